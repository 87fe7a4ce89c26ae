/**
 * Fan-out of native events: one native subscription per event, shared by
 * every JavaScript listener, taken when the first listener arrives and
 * given back when the last one leaves.
 */
import type { Subscription } from './types';

type NativeSubscribe<N> = (handler: (value: N) => void) => { remove(): void };

export class EventFanout<N, T> {
  private readonly listeners = new Set<{ readonly fn: (value: T) => void }>();
  private native: { remove(): void } | null = null;

  constructor(
    private readonly name: string,
    private readonly subscribe: () => NativeSubscribe<N>,
    private readonly convert: (value: N) => T,
  ) {}

  /** Adds a listener. Each call gets its own subscription, even for the same function. */
  add(fn: (value: T) => void): Subscription {
    if (typeof fn !== 'function') {
      throw new TypeError(`${this.name} needs a listener function`);
    }
    const entry = { fn };
    this.listeners.add(entry);
    if (this.native === null) {
      this.native = this.subscribe()(value => this.emit(value));
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

  private emit(raw: N): void {
    const value = this.convert(raw);
    // A copy: a listener may remove itself or others while we iterate.
    for (const entry of [...this.listeners]) {
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
