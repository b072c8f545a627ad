/**
 * File names inside a checkpoint folder, for a path on disk or a URL alike. No node:path, so that the
 * modules browsers load need no Node built-ins.
 *
 * @module
 */

/** `dir/name`, keeping a trailing separator of `dir` single. */
export function pathIn(dir: string, name: string): string {
  return /[/\\]$/.test(dir) ? dir + name : `${dir}/${name}`;
}
