/**
 * The parent's side of test/children/worker_db.ts: a Worker running the
 * database requests it is sent, one promise per request. Used by
 * test/workers.test.ts and bench/workers.bench.ts.
 *
 * @module
 */

/** The error a Worker answered with. */
export class WorkerError extends Error {
  /** The MdbxError's code name in the Worker, if it was one. */
  readonly codeName?: string;
  constructor(e: { name: string; codeName?: string; message: string }) {
    super(e.message);
    this.name = e.name;
    this.codeName = e.codeName;
  }
}

/** A Worker thread running test/children/worker_db.ts. */
export class DbWorker {
  readonly #w: Worker;
  readonly #pending = new Map<number, { ok: (v: unknown) => void; fail: (e: unknown) => void }>();
  readonly #progress = new Map<number, () => void>();
  #id = 0;
  #dead = false;
  readonly #ready: Promise<void>;
  #setReady: () => void = () => {};

  constructor() {
    this.#w = new Worker(new URL("./children/worker_db.ts", import.meta.url).href, { type: "module" });
    this.#ready = new Promise<void>((r) => this.#setReady = r);
    const ready = () => this.#setReady();
    this.#w.onmessage = (e: MessageEvent) => {
      const m = e.data as {
        id: number;
        ok?: unknown;
        error?: { name: string; message: string };
        progress?: string;
        ready?: boolean;
      };
      if (m.ready) {
        ready();
        return;
      }
      if (m.progress !== undefined) {
        this.#progress.get(m.id)?.();
        return;
      }
      const p = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      if (m.error) p?.fail(new WorkerError(m.error));
      else p?.ok(m.ok);
    };
    this.#w.onerror = (e: Event) => {
      const msg = (e as ErrorEvent).message ?? String(e);
      for (const p of this.#pending.values()) p.fail(new Error(`worker failed: ${msg}`));
      this.#pending.clear();
    };
  }

  /** Sends a request; resolves with the Worker's answer. `onProgress` hears its first progress message. */
  async call<T = unknown>(op: string, args: Record<string, unknown> = {}, onProgress?: () => void): Promise<T> {
    await this.#ready;
    if (this.#dead) throw new Error("worker terminated");
    const id = ++this.#id;
    if (onProgress) this.#progress.set(id, onProgress);
    return await new Promise<T>((ok, fail) => {
      this.#pending.set(id, { ok: ok as (v: unknown) => void, fail });
      this.#w.postMessage({ id, op, ...args });
    });
  }

  /** Kills the Worker's thread where it stands (worker.terminate()). */
  terminate(): void {
    this.#dead = true;
    this.#setReady();
    this.#w.terminate();
    for (const p of this.#pending.values()) p.fail(new Error("worker terminated"));
    this.#pending.clear();
  }
}

/** Polls `cond` every few milliseconds until it holds, or fails after `ms`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** `n` Workers, each with the database at `dbPath` open (`options` as `open()` takes them). */
export async function workers(n: number, dbPath: string, options: Record<string, unknown> = {}): Promise<DbWorker[]> {
  const ws = Array.from({ length: n }, () => new DbWorker());
  await Promise.all(ws.map((w) => w.call("open", { path: dbPath, options })));
  return ws;
}

/** Closes each Worker's Env (a Worker that is already gone is skipped) and terminates it. */
export async function closeAll(ws: DbWorker[]): Promise<void> {
  await Promise.all(ws.map((w) => w.call("close").catch(() => {})));
  for (const w of ws) w.terminate();
}
