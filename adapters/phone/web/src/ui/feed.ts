// The live list of prompts: a long poll that resumes after a lost connection. Each answer of
// PhoneDevice.prompts() is the whole pending list (the service keeps unanswered prompts until
// they expire), so a prompt that arrived while the phone was offline shows up on the next poll,
// and keying by id means it is never shown twice.

import type { Prompt } from "../protocol/device.js";

export interface PromptSource {
  prompts(opts?: { waitSeconds?: number; signal?: AbortSignal }): Promise<Prompt[]>;
  /** What the library refused and skipped since the last call (a tampered prompt...). */
  problems?(): Error[];
}

export interface FeedEvents {
  change(prompts: Prompt[]): void;
  /** null when the connection is back. */
  offline(err: unknown | null): void;
  /** Prompts that were refused (they are not in the list). */
  refused(errs: Error[]): void;
  /** An error that ends the feed (the device was removed...). */
  fatal(err: unknown): boolean;
}

export class PromptFeed {
  private pending = new Map<string, Prompt>();
  private readonly settled = new Set<string>();
  private abort: AbortController | null = null;
  private running = false;
  private failures = 0;
  /** Whether one poll has answered (before that, an empty list means "not known yet"). */
  loaded = false;

  constructor(
    private readonly source: PromptSource,
    private readonly on: FeedEvents,
    private readonly waitSeconds = 25,
    private readonly now: () => number = () => Date.now() / 1000,
  ) {}

  /** The pending prompts, oldest first, without the expired ones. */
  list(): Prompt[] {
    const now = this.now();
    for (const [id, p] of this.pending) if (p.expires <= now) this.pending.delete(id);
    return [...this.pending.values()];
  }

  /** Take one poll's answer (the pending list); returns whether the list changed. */
  merge(batch: Prompt[]): boolean {
    const now = this.now();
    const next = new Map<string, Prompt>();
    for (const p of batch) if (!this.settled.has(p.id) && p.expires > now && !next.has(p.id)) next.set(p.id, p);
    const changed = next.size !== this.pending.size || [...next.keys()].some((id) => !this.pending.has(id));
    this.pending = next;
    return changed;
  }

  /** A prompt was answered here (or refused as already answered): it leaves for good. */
  settle(id: string): void {
    this.settled.add(id);
    this.pending.delete(id);
    this.on.change(this.list());
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  stop(): void {
    this.running = false;
    this.abort?.abort();
  }

  /** Cut the current wait short (a push arrived, the app came to the foreground). */
  poke(): void {
    this.abort?.abort();
  }

  private async loop(): Promise<void> {
    let first = true;
    while (this.running) {
      this.abort = new AbortController();
      try {
        const batch = await this.source.prompts({
          waitSeconds: first ? 0 : this.waitSeconds,
          signal: this.abort.signal,
        });
        first = false;
        if (this.failures) this.on.offline(null);
        this.failures = 0;
        const refused = this.source.problems?.() ?? [];
        if (refused.length) this.on.refused(refused);
        const changed = this.merge(batch);
        if (changed || !this.loaded) {
          this.loaded = true;
          this.on.change(this.list());
        }
      } catch (err) {
        if (!this.running) return;
        if (this.abort.signal.aborted) continue; // poked: poll again at once
        if (this.on.fatal(err)) {
          this.running = false;
          return;
        }
        this.failures += 1;
        this.on.offline(err);
        const delay = Math.min(10_000, 500 * 2 ** Math.min(this.failures, 5));
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}
