/**
 * `deno task train -- ...`: runs the Python drafter trainer (`python3 -m redrafter_train`, in train/) with
 * the arguments passed through. Python is needed only for training; the library never calls it.
 * A missing Python or torch prints one line with the install command and exits 2.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

const TRAIN_DIR = fileURLToPath(new URL("../train/", import.meta.url));
const INSTALL = "pip install -r train/requirements.txt";

async function main(): Promise<number> {
  const python = Deno.env.get("PYTHON") ?? "python3";
  let probe;
  try {
    probe = await new Deno.Command(python, {
      args: ["-c", "import torch, transformers, safetensors"],
      stdout: "null",
      stderr: "null",
    }).output();
  } catch {
    console.error(`train: ${python} not found; install Python 3.10+ and then: ${INSTALL}`);
    return 2;
  }
  if (!probe.success) {
    console.error(`train: ${python} lacks torch/transformers/safetensors; install them: ${INSTALL}`);
    return 2;
  }
  // `deno task train -- --flag` hands the script a literal "--" first; argparse would read the rest as positionals.
  const args = Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args;
  const old = Deno.env.get("PYTHONPATH");
  const child = new Deno.Command(python, {
    args: ["-m", "redrafter_train", ...args],
    env: { PYTHONPATH: old ? `${TRAIN_DIR}:${old}` : TRAIN_DIR },
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  return (await child.status).code;
}

Deno.exit(await main());
