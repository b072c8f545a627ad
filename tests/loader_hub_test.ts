/**
 * loader/hub.ts against a local server on 127.0.0.1 that serves the Hub's URL layout (API, resolve URLs with
 * ETag / X-Repo-Commit / X-Linked-* headers, absolute redirects to a second "CDN" server with Range support).
 * The real fetch code runs; nothing is mocked.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { progressBar, type Sink } from "../cli/term.ts";
import {
  hubCacheDir,
  hubToken,
  parseRepoSpec,
  repoCacheDir,
  resolveModel,
  type ResolveOptions,
} from "../loader/hub.ts";

// ---------------------------------------------------------------------------------------------------------
// A small Hub

interface RepoFile {
  data: Uint8Array<ArrayBuffer>;
  lfs: boolean;
}
interface FakeRepo {
  /** revision name -> commit */
  refs: Record<string, string>;
  /** commit -> file name -> file */
  commits: Record<string, Record<string, RepoFile>>;
  /** Bearer token the resolve URLs demand (a gated repo). */
  token?: string;
  /** Files listed by the API but answering 404 at resolve. */
  vanished?: string[];
}
interface Seen {
  server: "hub" | "cdn";
  method: string;
  path: string;
  range: string | null;
  auth: string | null;
}

const enc = new TextEncoder();
const sha256 = (d: Uint8Array) => createHash("sha256").update(d).digest("hex");
const gitSha1 = (d: Uint8Array) => createHash("sha1").update(`blob ${d.length}\0`).update(d).digest("hex");
const commitId = (n: number) => n.toString(16).padStart(40, "a");

function bytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

class FakeHub {
  repos = new Map<string, FakeRepo>();
  /** old repo name -> new one (the Hub answers resolve URLs of the old name with a relative redirect). */
  renamed = new Map<string, string>();
  seen: Seen[] = [];
  /** sha256 -> bytes to send before dropping the connection, applied once per entry. */
  breakOnce = new Map<string, number>();
  /** sha256 of blobs the CDN serves with one byte flipped. */
  corrupt = new Set<string>();
  private hub!: Deno.HttpServer<Deno.NetAddr>;
  private cdn!: Deno.HttpServer<Deno.NetAddr>;

  get endpoint() {
    return `http://127.0.0.1:${this.hub.addr.port}`;
  }

  start() {
    const quiet = {
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
      onError: () => new Response(null, { status: 500 }),
    };
    this.hub = Deno.serve(quiet, (req) => this.serveHub(req));
    this.cdn = Deno.serve(quiet, (req) => this.serveCdn(req));
    return this;
  }

  async stop() {
    await this.hub.shutdown();
    await this.cdn.shutdown();
  }

  private note(server: "hub" | "cdn", req: Request) {
    const url = new URL(req.url);
    this.seen.push({
      server,
      method: req.method,
      path: url.pathname,
      range: req.headers.get("range"),
      auth: req.headers.get("authorization"),
    });
  }

  private serveHub(req: Request): Response {
    this.note("hub", req);
    const path = decodeURIComponent(new URL(req.url).pathname);
    let m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(path);
    if (m) {
      const repo = this.repos.get(m[1]);
      if (!repo) return new Response("{}", { status: 404, headers: { "x-error-code": "RepoNotFound" } });
      const commit = repo.refs[m[2]] ?? (repo.commits[m[2]] ? m[2] : undefined);
      if (!commit) {
        return new Response("{}", { status: 404, headers: { "x-error-code": "RevisionNotFound" } });
      }
      const siblings = Object.keys(repo.commits[commit]).map((rfilename) => ({ rfilename }));
      return Response.json({ id: m[1], sha: commit, siblings });
    }
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (!m) return new Response("no route", { status: 404 });
    const [, name, rev, file] = m;
    const newName = this.renamed.get(name);
    if (newName) {
      return new Response(null, { status: 307, headers: { location: `/${newName}/resolve/${rev}/${file}` } });
    }
    const repo = this.repos.get(name);
    if (!repo) return new Response(null, { status: 401, headers: { "x-error-code": "RepoNotFound" } });
    if (repo.token && req.headers.get("authorization") !== `Bearer ${repo.token}`) {
      return new Response(null, { status: 401, headers: { "x-error-code": "GatedRepo" } });
    }
    const commit = repo.refs[rev] ?? rev;
    const f = repo.commits[commit]?.[file];
    if (!f || repo.vanished?.includes(file)) {
      return new Response(null, {
        status: 404,
        headers: { "x-error-code": "EntryNotFound", "x-repo-commit": commit },
      });
    }
    if (f.lfs) {
      const sha = sha256(f.data);
      return new Response(null, {
        status: 302,
        headers: {
          location: `http://127.0.0.1:${this.cdn.addr.port}/cdn/${sha}`,
          "x-linked-etag": `"${sha}"`,
          "x-linked-size": String(f.data.length),
          "x-repo-commit": commit,
          etag: `W/"not-the-content-etag"`,
        },
      });
    }
    const headers = {
      etag: `"${gitSha1(f.data)}"`,
      "x-repo-commit": commit,
      "content-length": String(f.data.length),
    };
    return new Response(req.method === "HEAD" ? null : f.data, { headers });
  }

  private blobBySha(sha: string): Uint8Array<ArrayBuffer> | undefined {
    for (const repo of this.repos.values()) {
      for (const files of Object.values(repo.commits)) {
        for (const f of Object.values(files)) if (f.lfs && sha256(f.data) === sha) return f.data;
      }
    }
  }

  private serveCdn(req: Request): Response {
    this.note("cdn", req);
    const sha = /^\/cdn\/([0-9a-f]{64})$/.exec(new URL(req.url).pathname)?.[1];
    let data = sha ? this.blobBySha(sha) : undefined;
    if (!sha || !data) return new Response("no such blob", { status: 404 });
    if (this.corrupt.has(sha)) {
      data = data.slice();
      data[data.length >> 1] ^= 0xff;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.get("range") ?? "");
    if (range) {
      start = Number(range[1]);
      if (start >= data.length) return new Response(null, { status: 416 });
    }
    const body = data.subarray(start);
    const headers: Record<string, string> = { "content-length": String(body.length), etag: `"${sha}"` };
    if (range) headers["content-range"] = `bytes ${start}-${data.length - 1}/${data.length}`;
    const status = range ? 206 : 200;
    const cut = this.breakOnce.get(sha);
    if (cut === undefined) return new Response(body, { status, headers });
    this.breakOnce.delete(sha);
    // Send `cut` bytes, then fail the stream: the server drops the connection mid-body.
    const stream = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        controller.enqueue(body.slice(0, cut));
        await new Promise((r) => setTimeout(r, 50));
        controller.error(new Error("simulated connection drop"));
      },
    });
    return new Response(stream, { status, headers });
  }
}

function tinyModel(seed = 1) {
  const weights = bytes(10_000, seed);
  const files: Record<string, RepoFile> = {
    "config.json": { data: enc.encode(JSON.stringify({ model_type: "llama", hidden_size: 8 })), lfs: false },
    "generation_config.json": { data: enc.encode('{"eos_token_id": 2}'), lfs: false },
    "tokenizer.json": { data: enc.encode('{"model": {"type": "BPE"}}'), lfs: false },
    "tokenizer_config.json": { data: enc.encode("{}"), lfs: false },
    "model.safetensors": { data: weights, lfs: true },
    "README.md": { data: enc.encode("# not needed"), lfs: false },
    "pytorch_model.bin": { data: bytes(5000, 9), lfs: true },
  };
  return { files, weights };
}

async function withHub(fn: (hub: FakeHub, cache: string) => Promise<void>) {
  const hub = new FakeHub().start();
  const cache = await Deno.makeTempDir({ prefix: "redrafter-hub-test-" });
  try {
    await fn(hub, cache);
  } finally {
    await hub.stop();
    await Deno.remove(cache, { recursive: true });
  }
}

function opts(hub: FakeHub, cache: string, more: ResolveOptions = {}): ResolveOptions {
  return {
    endpoint: hub.endpoint,
    cacheDir: cache,
    token: null,
    env: () => undefined,
    log: () => {},
    ...more,
  };
}

async function readBytes(path: string) {
  return new Uint8Array(await Deno.readFile(path));
}

// ---------------------------------------------------------------------------------------------------------

Deno.test("downloads the needed files into a huggingface_hub-shaped cache", async () => {
  await withHub(async (hub, cache) => {
    const { files, weights } = tinyModel();
    const commit = commitId(1);
    hub.repos.set("org/tiny", { refs: { main: commit }, commits: { [commit]: files } });
    const progress: {
      label: string;
      total: number | null;
      initial: number;
      last: number;
      finished: boolean;
    }[] = [];
    const got = await resolveModel(
      "org/tiny",
      opts(hub, cache, {
        progress: (label, total, initial) => {
          const p = { label, total, initial, last: -1, finished: false };
          progress.push(p);
          return { update: (n) => void (p.last = n), finish: () => void (p.finished = true) };
        },
      }),
    );
    const repoDir = join(cache, "models--org--tiny");
    assert.equal(repoDir, repoCacheDir(cache, "org/tiny"));
    assert.equal(got.dir, join(repoDir, "snapshots", commit));
    assert.deepEqual([got.repo, got.revision, got.commit, got.offline], ["org/tiny", "main", commit, false]);
    assert.deepEqual(got.files.sort(), [
      "config.json",
      "generation_config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);
    assert.equal(await Deno.readTextFile(join(repoDir, "refs", "main")), commit);
    // Pointers are relative symlinks into blobs/, named by ETag (sha256 for LFS, git sha1 otherwise).
    assert.equal(await Deno.readLink(join(got.dir, "model.safetensors")), `../../blobs/${sha256(weights)}`);
    const cfg = files["config.json"].data;
    assert.equal(await Deno.readLink(join(got.dir, "config.json")), `../../blobs/${gitSha1(cfg)}`);
    assert.deepEqual(await readBytes(join(got.dir, "model.safetensors")), weights);
    assert.deepEqual(await readBytes(join(got.dir, "config.json")), cfg);
    assert.ok(
      !(await exists(join(got.dir, "README.md"))) && !(await exists(join(got.dir, "pytorch_model.bin"))),
    );
    // The weights came from the CDN without the token; progress saw every byte.
    const cdn = hub.seen.filter((s) => s.server === "cdn");
    assert.deepEqual(cdn.map((s) => s.path), [`/cdn/${sha256(weights)}`]);
    const bar = progress.find((p) => p.label === "model.safetensors")!;
    assert.deepEqual([bar.total, bar.initial, bar.last, bar.finished], [10_000, 0, 10_000, true]);

    // A second call asks only the API: every file is in the snapshot already.
    hub.seen = [];
    const again = await resolveModel("org/tiny", opts(hub, cache));
    assert.equal(again.dir, got.dir);
    assert.deepEqual(hub.seen.map((s) => s.path), [`/api/models/org/tiny/revision/main`]);
  });
});

Deno.test("cli/term.ts progressBar plugs in as the download display (plain lines when not a TTY)", async () => {
  await withHub(async (hub, cache) => {
    const { files } = tinyModel(8);
    const commit = commitId(10);
    hub.repos.set("org/tiny", { refs: { main: commit }, commits: { [commit]: files } });
    const lines: string[] = [];
    const sink: Sink = { isTTY: false, columns: 80, write: (t) => void lines.push(t) };
    await resolveModel(
      "org/tiny",
      opts(hub, cache, {
        progress: (label, total, initial) => progressBar({ label, total, initial, unit: "bytes", sink }),
      }),
    );
    const last = lines.filter((l) => l.startsWith("model.safetensors: 100%"));
    assert.equal(last.length, 1);
    assert.match(last[0], /^model\.safetensors: 100% 9\.8 KiB\/9\.8 KiB /);
    assert.ok(lines.some((l) => l.startsWith("config.json: 100%")));
  });
});

Deno.test("an interrupted download leaves .incomplete; the next call resumes with Range, byte-identical", async () => {
  await withHub(async (hub, cache) => {
    const { files, weights } = tinyModel(7);
    const commit = commitId(2);
    hub.repos.set("org/tiny", { refs: { main: commit }, commits: { [commit]: files } });
    const sha = sha256(weights);
    hub.breakOnce.set(sha, 3000);
    await assert.rejects(
      resolveModel("org/tiny", opts(hub, cache, { maxRetries: 0 })),
      /model\.safetensors: download interrupted after \d+ bytes \(.*\); run again to resume \(.*\.incomplete\)$/,
    );
    const partial = join(cache, "models--org--tiny", "blobs", `${sha}.incomplete`);
    const partSize = (await Deno.stat(partial)).size;
    assert.ok(partSize > 0 && partSize <= 3000, `partial size ${partSize}`);
    assert.deepEqual(await readBytes(partial), weights.subarray(0, partSize));

    hub.seen = [];
    let initial = -1;
    const got = await resolveModel(
      "org/tiny",
      opts(hub, cache, { progress: (_l, _t, i) => ((initial = i), { update() {}, finish() {} }) }),
    );
    const cdn = hub.seen.filter((s) => s.server === "cdn");
    assert.equal(cdn.length, 1);
    assert.equal(cdn[0].range, `bytes=${partSize}-`);
    assert.equal(initial, partSize);
    assert.deepEqual(await readBytes(join(got.dir, "model.safetensors")), weights);
    assert.equal(await exists(partial), false);
  });
});

Deno.test("a dropped connection is resumed within the same call, with a warning", async () => {
  await withHub(async (hub, cache) => {
    const { files, weights } = tinyModel(3);
    const commit = commitId(3);
    hub.repos.set("org/tiny", { refs: { main: commit }, commits: { [commit]: files } });
    hub.breakOnce.set(sha256(weights), 4096);
    const warnings: string[] = [];
    const got = await resolveModel("org/tiny", opts(hub, cache, { log: (l) => warnings.push(l) }));
    assert.deepEqual(await readBytes(join(got.dir, "model.safetensors")), weights);
    const ranges = hub.seen.filter((s) => s.server === "cdn").map((s) => s.range);
    assert.equal(ranges.length, 2);
    assert.equal(ranges[0], null);
    assert.match(ranges[1]!, /^bytes=[1-9]\d*-$/);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /^warning: model\.safetensors: .* resuming \(1\/3\)$/);
  });
});

Deno.test("corrupted bytes fail the sha256 check and leave nothing behind", async () => {
  await withHub(async (hub, cache) => {
    const { files, weights } = tinyModel(4);
    const commit = commitId(4);
    hub.repos.set("org/tiny", { refs: { main: commit }, commits: { [commit]: files } });
    const sha = sha256(weights);
    hub.corrupt.add(sha);
    await assert.rejects(
      resolveModel("org/tiny", opts(hub, cache)),
      /model\.safetensors of org\/tiny: sha256 \w+ does not match/,
    );
    const blobs = join(cache, "models--org--tiny", "blobs");
    assert.equal(await exists(join(blobs, sha)), false);
    assert.equal(await exists(join(blobs, `${sha}.incomplete`)), false);
    hub.corrupt.clear();
    const got = await resolveModel("org/tiny", opts(hub, cache));
    assert.deepEqual(await readBytes(join(got.dir, "model.safetensors")), weights);
  });
});

Deno.test("404s name the repo, the revision or the file", async () => {
  await withHub(async (hub, cache) => {
    const { files } = tinyModel();
    const commit = commitId(5);
    hub.repos.set("org/tiny", {
      refs: { main: commit },
      commits: { [commit]: files },
      vanished: ["tokenizer.json"],
    });
    await assert.rejects(
      resolveModel("org/nope", opts(hub, cache)),
      (
        e: Error,
      ) => (assert.match(
        e.message,
        /^org\/nope: repository not found on http:\/\/127\.0\.0\.1:\d+ \(HTTP 404\)/,
      ),
        assert.match(e.message, /HF_TOKEN/),
        true),
    );
    await assert.rejects(
      resolveModel("org/tiny@v9", opts(hub, cache)),
      /^Error: org\/tiny: revision 'v9' not found/,
    );
    await assert.rejects(
      resolveModel("org/tiny", opts(hub, cache)),
      /^Error: tokenizer\.json: not found in org\/tiny@main \(HTTP 404\)/,
    );
    const noWeights = {
      "config.json": files["config.json"],
      "pytorch_model.bin": files["pytorch_model.bin"],
    };
    hub.repos.set("org/bin", { refs: { main: commit }, commits: { [commit]: noWeights } });
    await assert.rejects(
      resolveModel("org/bin", opts(hub, cache)),
      /org\/bin@main: has no model\.safetensors or model\.safetensors\.index\.json \(files: config\.json, pytorch_model\.bin\)/,
    );
  });
});

Deno.test("a gated repo: 401 names the repo and HF_TOKEN; with the token it downloads, the CDN never sees it", async () => {
  await withHub(async (hub, cache) => {
    const { files, weights } = tinyModel(5);
    const commit = commitId(6);
    hub.repos.set("meta/gated", { refs: { main: commit }, commits: { [commit]: files }, token: "hf_secret" });
    await assert.rejects(resolveModel("meta/gated", opts(hub, cache)), (e: Error) => {
      assert.match(e.message, /^meta\/gated: access denied \(HTTP 401\)/);
      assert.match(e.message, /set HF_TOKEN/);
      assert.match(e.message, /\/meta\/gated/);
      return true;
    });
    await assert.rejects(
      resolveModel("meta/gated", opts(hub, cache, { token: "hf_wrong" })),
      /meta\/gated: access denied \(HTTP 401\) with the HF_TOKEN given/,
    );
    hub.seen = [];
    // The token comes from HF_TOKEN in the environment when not passed.
    const env = (k: string) => (k === "HF_TOKEN" ? "hf_secret" : undefined);
    const got = await resolveModel("meta/gated", { ...opts(hub, cache), token: undefined, env });
    assert.deepEqual(await readBytes(join(got.dir, "model.safetensors")), weights);
    assert.ok(hub.seen.filter((s) => s.server === "hub").every((s) => s.auth === "Bearer hf_secret"));
    assert.ok(hub.seen.filter((s) => s.server === "cdn").every((s) => s.auth === null));
  });
});

Deno.test("offline: HF_HUB_OFFLINE or an unreachable Hub uses the cache; nothing cached is one line", async () => {
  await withHub(async (hub, cache) => {
    const { files } = tinyModel(6);
    const commit = commitId(7);
    hub.repos.set("org/tiny", { refs: { main: commit }, commits: { [commit]: files } });
    const online = await resolveModel("org/tiny", opts(hub, cache));

    // Offline by the environment: no request at all.
    hub.seen = [];
    const env = (k: string) => (k === "HF_HUB_OFFLINE" ? "1" : undefined);
    const off = await resolveModel("org/tiny", { ...opts(hub, cache), env });
    assert.equal(hub.seen.length, 0);
    assert.deepEqual([off.dir, off.commit, off.offline], [online.dir, commit, true]);
    assert.deepEqual(off.files.sort(), online.files.sort());
    // By commit hash, too.
    assert.equal(
      (await resolveModel(`org/tiny@${commit}`, opts(hub, cache, { offline: true }))).dir,
      online.dir,
    );

    // Unreachable Hub: a port nobody listens on.
    const dead = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response());
    const deadEndpoint = `http://127.0.0.1:${dead.addr.port}`;
    await dead.shutdown();
    const warnings: string[] = [];
    const fallback = await resolveModel(
      "org/tiny",
      opts(hub, cache, { endpoint: deadEndpoint, log: (l) => warnings.push(l) }),
    );
    assert.equal(fallback.dir, online.dir);
    assert.equal(fallback.offline, true);
    assert.match(
      warnings[0],
      /^warning: cannot reach http:\/\/127\.0\.0\.1:\d+ .*; using the cached snapshot a+7$/,
    );

    for (
      const [spec, o] of [
        ["org/other", opts(hub, cache, { offline: true })],
        ["org/tiny@dev", opts(hub, cache, { endpoint: deadEndpoint })],
      ] as const
    ) {
      await assert.rejects(resolveModel(spec, o), (e: Error) => {
        assert.ok(!e.message.includes("\n"));
        assert.match(
          e.message,
          /^(HF_HUB_OFFLINE is set|cannot reach http:\/\/127\.0\.0\.1:\d+ \(fetch failed: Connection refused.*\)), and nothing of org\/\w+@\w+ is cached in /,
        );
        return true;
      });
    }
    // A snapshot that lost its weights is reported, not returned.
    await Deno.remove(join(online.dir, "model.safetensors"));
    await assert.rejects(
      resolveModel("org/tiny", opts(hub, cache, { offline: true })),
      /lacks model\.safetensors$/,
    );
  });
});

Deno.test("sharded checkpoints, revisions sharing blobs, renamed repos, nested extra files", async () => {
  await withHub(async (hub, cache) => {
    const { files } = tinyModel();
    const shard1 = bytes(3000, 11), shard2 = bytes(2000, 12);
    const index = {
      metadata: {},
      weight_map: {
        "a.weight": "model-00001-of-00002.safetensors",
        "b.weight": "model-00002-of-00002.safetensors",
        "c.weight": "model-00001-of-00002.safetensors",
      },
    };
    const v1 = commitId(8), v2 = commitId(9);
    const sharded: Record<string, RepoFile> = {
      "config.json": files["config.json"],
      "tokenizer.json": files["tokenizer.json"],
      "model.safetensors.index.json": { data: enc.encode(JSON.stringify(index)), lfs: false },
      "model-00001-of-00002.safetensors": { data: shard1, lfs: true },
      "model-00002-of-00002.safetensors": { data: shard2, lfs: true },
      "drafter/config.json": { data: enc.encode('{"beam": 4}'), lfs: false },
    };
    const v2files = { ...sharded, "tokenizer.json": { data: enc.encode('{"v": 2}'), lfs: false } };
    hub.repos.set("new/model", { refs: { main: v2, v1 }, commits: { [v1]: sharded, [v2]: v2files } });
    hub.renamed.set("old/model", "new/model");
    hub.repos.set("old/model", hub.repos.get("new/model")!); // the API answers for the old name too

    const first = await resolveModel(
      "old/model@v1",
      opts(hub, cache, { extraFiles: ["drafter/config.json"] }),
    );
    assert.ok(hub.seen.some((s) => s.method === "HEAD" && s.path.startsWith("/new/model/resolve/")));
    assert.deepEqual(await readBytes(join(first.dir, "model-00002-of-00002.safetensors")), shard2);
    assert.ok(first.files.includes("model-00001-of-00002.safetensors"));
    assert.equal(
      await Deno.readLink(join(first.dir, "drafter", "config.json")),
      `../../../blobs/${gitSha1(enc.encode('{"beam": 4}'))}`,
    );
    assert.equal(await Deno.readTextFile(join(cache, "models--old--model", "refs", "v1")), v1);

    // main shares the shards with v1: only the changed tokenizer is downloaded.
    hub.seen = [];
    const second = await resolveModel("old/model", opts(hub, cache));
    assert.equal(second.commit, v2);
    const gets = hub.seen.filter((s) => s.method === "GET" && !s.path.startsWith("/api/"));
    assert.deepEqual(gets.map((s) => s.path), ["/new/model/resolve/" + v2 + "/tokenizer.json"]);
    assert.equal(await Deno.readTextFile(join(second.dir, "tokenizer.json")), '{"v": 2}');
    assert.equal(await Deno.readTextFile(join(first.dir, "tokenizer.json")), '{"model": {"type": "BPE"}}');

    // An index naming a shard the repo lacks.
    const broken = { ...sharded };
    delete broken["model-00002-of-00002.safetensors"];
    hub.repos.set("org/broken", { refs: { main: v1 }, commits: { [v1]: broken } });
    await assert.rejects(
      resolveModel("org/broken", opts(hub, cache)),
      /model\.safetensors\.index\.json of org\/broken@main names model-00002-of-00002\.safetensors, which the repo lacks/,
    );
  });
});

Deno.test("local directories, bad specs, cache location and token lookup", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const got = await resolveModel(dir);
    assert.deepEqual([got.dir, got.repo, got.files], [dir, null, []]);
    await Deno.writeTextFile(join(dir, "f"), "");
    await assert.rejects(resolveModel(join(dir, "f")), /f: is a file; expected a model directory/);
    await assert.rejects(
      resolveModel(join(dir, "missing")),
      /missing: no such directory, and not a Hub repo id/,
    );
    await assert.rejects(
      resolveModel("just-a-name"),
      /just-a-name: no such directory, and not a Hub repo id/,
    );

    assert.deepEqual(parseRepoSpec("meta-llama/Llama-3.2-1B@refs/pr/1"), {
      repo: "meta-llama/Llama-3.2-1B",
      revision: "refs/pr/1",
    });
    assert.deepEqual(parseRepoSpec("a/b"), { repo: "a/b", revision: "main" });
    for (const bad of ["a/b/c", "a--x/b", "a/..b", "a/b@", "/abs", "a/-b"]) {
      assert.equal(parseRepoSpec(bad), null, bad);
    }

    const env = (vars: Record<string, string>) => (k: string) => vars[k];
    assert.equal(hubCacheDir(env({ HF_HUB_CACHE: "/c", HF_HOME: "/h" })), "/c");
    assert.equal(hubCacheDir(env({ HF_HOME: "/h", XDG_CACHE_HOME: "/x" })), "/h/hub");
    assert.equal(hubCacheDir(env({ XDG_CACHE_HOME: "/x" })), "/x/huggingface/hub");
    assert.equal(hubCacheDir(env({ HOME: "/home/u" })), "/home/u/.cache/huggingface/hub");
    await Deno.writeTextFile(join(dir, "token"), "hf_from_file\n");
    assert.equal(hubToken(env({ HF_HOME: dir })), "hf_from_file");
    assert.equal(hubToken(env({ HF_HOME: dir, HF_TOKEN: "hf_env" })), "hf_env");
    assert.equal(hubToken(env({ HF_HOME: join(dir, "none") })), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
