/**
 * Fan-out of native events: one native subscription per event, shared by
 * every JavaScript listener, taken when the first listener arrives and
 * given back when the last one leaves.
 */
import { UploadError } from './errors';
import type { Subscription } from './types';

type NativeSubscribe<N> = (handler: (value: N) => void) => { remove(): void };

/**
 * The current state, replayed to the listeners that start a native
 * subscription: the module sends its snapshot when React Native hands it
 * the emitters, before any JavaScript listener exists, so those events are
 * gone. `key` and `time` order a replayed value against live ones.
 */
export interface Replay<T> {
  readonly fetch: () => Promise<readonly T[]>;
  readonly key: (value: T) => number;
  readonly time: (value: T) => number;
}

type Entry<T> = {
  readonly fn: (value: T) => void;
  /** Waits for the replay under way (asked for it, and came before it landed). */
  awaiting: boolean;
};

export class EventFanout<N, T> {
  private readonly listeners = new Set<Entry<T>>();
  private native: { remove(): void } | null = null;
  /** Per key, the newest time a live event carried since the replay began. */
  private live: Map<number, number> | null = null;

  constructor(
    private readonly name: string,
    private readonly subscribe: () => NativeSubscribe<N>,
    private readonly convert: (value: N) => T,
    private readonly replay?: Replay<T>,
  ) {}

  /**
   * Adds a listener. Each call gets its own subscription, even for the same
   * function. With `replay`, a listener that starts the native subscription
   * (or joins it before its replay lands) also gets the replay.
   */
  add(fn: (value: T) => void, replay = true): Subscription {
    if (typeof fn !== 'function') {
      throw new UploadError(
        'invalid_argument',
        `${this.name} needs a listener function, got ${fn === null ? 'null' : typeof fn}`,
      );
    }
    const starts = this.native === null;
    const entry: Entry<T> = { fn, awaiting: replay && (starts || this.live !== null) };
    if (starts) {
      // Subscribed before the listener is counted: a failure (no native
      // module) leaves nothing behind.
      const native = this.subscribe()(value => this.emit(value));
      this.native = native;
      this.listeners.add(entry);
      this.replayTo(native);
    } else {
      this.listeners.add(entry);
    }
    let removed = false;
    return {
      remove: () => {
        if (removed) {
          return;
        }
        removed = true;
        this.listeners.delete(entry);
        if (this.listeners.size === 0 && this.native !== null) {
          const native = this.native;
          this.native = null;
          native.remove();
        }
      },
    };
  }

  /** Number of listeners (for tests and diagnostics). */
  get size(): number {
    return this.listeners.size;
  }

  /**
   * Gives the listeners of this native subscription the current state,
   * once, leaving out what a live event already superseded. Listeners
   * that join an existing subscription get no replay (the state is in
   * `getUploads`); a failed fetch replays nothing.
   */
  private replayTo(native: { remove(): void }): void {
    const replay = this.replay;
    if (replay === undefined || ![...this.listeners].some(e => e.awaiting)) {
      return;
    }
    const live = new Map<number, number>();
    this.live = live;
    let values: Promise<readonly T[]>;
    const done = () => {
      if (this.native !== native) {
        return []; // every listener left meanwhile
      }
      this.live = null;
      const waiting = [...this.listeners].filter(e => e.awaiting);
      for (const e of waiting) {
        e.awaiting = false;
      }
      return waiting;
    };
    try {
      values = replay.fetch();
    } catch {
      done();
      return;
    }
    values.then(
      list => {
        const waiting = done();
        for (const value of list) {
          const seen = live.get(replay.key(value));
          if (seen === undefined || seen < replay.time(value)) {
            this.deliver(value, waiting);
          }
        }
      },
      () => {
        done();
      },
    );
  }

  private emit(raw: N): void {
    const value = this.convert(raw);
    if (this.live !== null && this.replay !== undefined) {
      const key = this.replay.key(value);
      this.live.set(key, Math.max(this.live.get(key) ?? -Infinity, this.replay.time(value)));
    }
    this.deliver(value);
  }

  private deliver(value: T, to: readonly Entry<T>[] = [...this.listeners]): void {
    // A copy: a listener may remove itself or others while we iterate.
    for (const entry of to) {
      if (!this.listeners.has(entry)) {
        continue;
      }
      try {
        entry.fn(value);
      } catch (e) {
        // One failing listener must not starve the others.
        console.error(`react-native-s3-bg-uploader: an ${this.name} listener threw`, e);
      }
    }
  }
}
