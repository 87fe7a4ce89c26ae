/**
 * React hooks. Each reads the current snapshot on mount, then follows the
 * engine's events, so a screen stays current without polling.
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { getSummary, getUploads, matchesFilter, onProgress, onStateChangeLive } from './api';
import { toUploadError, type UploadError } from './errors';
import type { Subscription, Summary, Upload, UploadFilter } from './types';
import { checkFilter } from './validate';

export interface UploadsResult {
  /** Matching uploads in queue order; empty until the first snapshot arrives. */
  readonly uploads: readonly Upload[];
  /** True until the first snapshot arrived (or failed). */
  readonly loading: boolean;
  /** The failure of the last snapshot, if it failed. */
  readonly error: UploadError | null;
  /** Reads a fresh snapshot. */
  readonly refresh: () => void;
}

export interface UploadResult {
  /** The upload, or null while loading or when there is no such upload. */
  readonly upload: Upload | null;
  readonly loading: boolean;
  readonly error: UploadError | null;
  readonly refresh: () => void;
}

export interface SummaryResult {
  /** Null until the first snapshot arrives. */
  readonly summary: Summary | null;
  readonly loading: boolean;
  readonly error: UploadError | null;
  readonly refresh: () => void;
}

/** How long `useSummary` gathers events before it reads a new summary. */
export const SUMMARY_REFRESH_MS = 200;

interface Loaded<T> {
  /** The filter or transfer the value belongs to. */
  readonly key: string;
  /** The refresh round that produced it. */
  readonly round: number;
  readonly value: T;
  readonly error: UploadError | null;
}

/** A stable identity for a filter, so an inline object literal does not re-subscribe on every render. */
function filterKey(filter: UploadFilter | null | undefined): string {
  if (filter === null) {
    return 'none';
  }
  if (filter === undefined) {
    return 'all';
  }
  const states =
    filter.state === undefined
      ? []
      : typeof filter.state === 'string'
      ? [filter.state]
      : [...filter.state];
  return JSON.stringify([
    filter.id ?? filter.uploadId,
    filter.transferId,
    filter.fileHash,
    states.sort(),
  ]);
}

/**
 * Takes every subscription, or none: when one cannot be taken (no native
 * module in this build) the hook shows the error instead of throwing from
 * an effect, which would unmount the app.
 */
function subscribeAll(
  fail: (e: unknown) => void,
  subscribers: ReadonlyArray<() => Subscription>,
): Subscription[] | null {
  const subs: Subscription[] = [];
  try {
    for (const subscribe of subscribers) {
      subs.push(subscribe());
    }
    return subs;
  } catch (e) {
    subs.forEach(s => s.remove());
    fail(e);
    return null;
  }
}

function byId(a: Upload, b: Upload): number {
  return a.id - b.id;
}

function useRefreshRound(): [number, () => void] {
  const [round, setRound] = useState(0);
  const refresh = useCallback(() => setRound(r => r + 1), []);
  return [round, refresh];
}

/**
 * What a hook shows: a value loaded for an earlier key (another filter or
 * transfer) is never shown; one from an earlier refresh round is, until the
 * new one arrives.
 */
function shown<T>(loaded: Loaded<T> | null, key: string, round: number) {
  const current = loaded !== null && loaded.key === key ? loaded : null;
  return {
    current,
    loading: current === null || (current.round !== round && current.error === null),
  };
}

/** The uploads matching `filter`, kept current; null follows nothing. */
function useUploadList(filter: UploadFilter | null | undefined): UploadsResult {
  const key = filterKey(filter);
  // Checked once per distinct filter: a bad filter throws during render, like a bad prop.
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const checked = useMemo(() => (filter === null ? null : checkFilter(filter)), [key]);
  const [round, refresh] = useRefreshRound();
  const [loaded, setLoaded] = useState<Loaded<readonly Upload[]> | null>(null);

  useEffect(() => {
    if (checked === null) {
      return undefined;
    }
    let active = true;
    let uploads: Map<number, Upload> | null = null;
    // State changes that arrive before the snapshot, replayed on top of it.
    const early: Upload[] = [];

    const publish = (current: Map<number, Upload>) => {
      setLoaded({ key, round, value: [...current.values()].sort(byId), error: null });
    };
    const applyState = (current: Map<number, Upload>, u: Upload): boolean => {
      if (matchesFilter(u, checked)) {
        const known = current.get(u.id);
        if (known && known.updatedAtMs > u.updatedAtMs) {
          return false;
        }
        current.set(u.id, u);
        return true;
      }
      return current.delete(u.id);
    };

    const fail = (e: unknown) => {
      setLoaded(prev => ({
        key,
        round,
        value: prev !== null && prev.key === key ? prev.value : EMPTY,
        error: toUploadError(e),
      }));
    };
    const subs = subscribeAll(fail, [
      () =>
        onStateChangeLive(u => {
          if (uploads === null) {
            early.push(u);
          } else if (applyState(uploads, u)) {
            publish(uploads);
          }
        }),
      () =>
        onProgress(p => {
          // Progress before the snapshot is dropped: the snapshot is at least as new.
          const known = uploads?.get(p.id);
          if (uploads === null || known === undefined) {
            return;
          }
          uploads.set(p.id, {
            ...known,
            uploadedBytes: p.uploadedBytes,
            partsDone: p.partsDone,
            partsTotal: p.partsTotal,
          });
          publish(uploads);
        }),
    ]);
    if (subs === null) {
      return undefined;
    }

    getUploads(checked).then(
      list => {
        if (!active) {
          return;
        }
        const current = new Map(list.map(u => [u.id, u] as const));
        for (const u of early) {
          applyState(current, u);
        }
        early.length = 0;
        uploads = current;
        publish(current);
      },
      (e: unknown) => {
        if (active) {
          fail(e);
        }
      },
    );

    return () => {
      active = false;
      subs.forEach(s => s.remove());
    };
  }, [checked, key, round]);

  if (checked === null) {
    return { uploads: EMPTY, loading: false, error: null, refresh };
  }
  const { current, loading } = shown(loaded, key, round);
  return { uploads: current?.value ?? EMPTY, loading, error: current?.error ?? null, refresh };
}

const EMPTY: readonly Upload[] = [];

/**
 * The uploads that match `filter` (every upload without one), kept current:
 * a state change replaces an upload's snapshot (adding new matching uploads
 * and dropping ones that stopped matching) and progress updates its bytes
 * and parts. An inline filter object is fine: only its content matters.
 */
export function useUploads(filter?: UploadFilter): UploadsResult {
  return useUploadList(filter);
}

/** One upload by its `Upload.id`, kept current. Pass null or undefined to follow nothing. */
export function useUpload(id: number | null | undefined): UploadResult {
  const none = id === null || id === undefined;
  const result = useUploadList(none ? null : { id });
  return {
    upload: result.uploads[0] ?? null,
    loading: result.loading,
    error: result.error,
    refresh: result.refresh,
  };
}

/**
 * The summary of one transfer (of every upload without an id), kept
 * current: events of that transfer make it read a new summary, at most one
 * read at a time and at most every `SUMMARY_REFRESH_MS`.
 */
export function useSummary(transferId?: string): SummaryResult {
  const [round, refresh] = useRefreshRound();
  const key = transferId === undefined ? 'all' : `transfer:${transferId}`;
  const [loaded, setLoaded] = useState<Loaded<Summary | null> | null>(null);

  useEffect(() => {
    let active = true;
    let reading = false;
    let dirty = false;
    let timer: ReturnType<typeof setTimeout> | null = null;

    const read = () => {
      timer = null;
      reading = true;
      dirty = false;
      getSummary(transferId)
        .then(
          summary => {
            if (active) {
              setLoaded({ key, round, value: summary, error: null });
            }
          },
          (e: unknown) => {
            if (active) {
              setLoaded(prev => ({
                key,
                round,
                value: prev !== null && prev.key === key ? prev.value : null,
                error: toUploadError(e),
              }));
            }
          },
        )
        .finally(() => {
          reading = false;
          if (active && dirty) {
            schedule();
          }
        });
    };
    const schedule = () => {
      if (reading) {
        dirty = true;
      } else if (timer === null) {
        timer = setTimeout(read, SUMMARY_REFRESH_MS);
      }
    };
    const onEvent = (e: { transferId: string }) => {
      if (transferId === undefined || e.transferId === transferId) {
        schedule();
      }
    };

    const subs = subscribeAll(
      e =>
        setLoaded(prev => ({
          key,
          round,
          value: prev !== null && prev.key === key ? prev.value : null,
          error: toUploadError(e),
        })),
      [() => onStateChangeLive(onEvent), () => onProgress(onEvent)],
    );
    if (subs === null) {
      return undefined;
    }
    read();

    return () => {
      active = false;
      if (timer !== null) {
        clearTimeout(timer);
      }
      subs.forEach(s => s.remove());
    };
  }, [key, round, transferId]);

  const { current, loading } = shown(loaded, key, round);
  return { summary: current?.value ?? null, loading, error: current?.error ?? null, refresh };
}
