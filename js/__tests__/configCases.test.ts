/**
 * The configuration cases shared with the engine (rust-core `js/tests.rs`
 * feeds the same file to `config_from_json`): JavaScript and the engine
 * accept exactly the same configurations.
 */
import { UploadError } from '../src/errors';
import { configToNativeJson } from '../src/validate';
import cases from './fixtures/config-cases.json';

type Case = {
  name: string;
  accept: boolean;
  set?: Record<string, unknown>;
  unset?: string[];
  whole?: unknown;
};

function configOf(c: Case): unknown {
  if ('whole' in c) {
    return c.whole;
  }
  const config: Record<string, unknown> = { ...cases.base, ...(c.set ?? {}) };
  for (const key of c.unset ?? []) {
    delete config[key];
  }
  return config;
}

/** The renaming the engine's test applies (rust-core `js/tests.rs` `to_native`). */
function toNative(config: Record<string, unknown>): Record<string, unknown> {
  const names: Record<string, string> = {
    startUploadApi: 'startUploadUrl',
    getUploadUrlsApi: 'uploadUrlsUrl',
    completeApi: 'completeUrl',
    abortApi: 'abortUrl',
    maxParallelParts: 'maxPartsInFlight',
  };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    let value = v;
    if (k === 'headers') {
      value = Object.entries(v as Record<string, unknown>);
    } else if (k === 'retry') {
      value = Object.fromEntries(
        Object.entries(v as Record<string, unknown>).map(([rk, rv]) => [
          rk === 'initialDelayMs' ? 'baseDelayMs' : rk,
          rv,
        ]),
      );
    }
    out[names[k] ?? k] = value;
  }
  return out;
}

describe('configuration cases shared with the engine', () => {
  const all = cases.cases as Case[];

  it('has enough cases of both kinds', () => {
    expect(all.filter(c => c.accept).length).toBeGreaterThan(10);
    expect(all.filter(c => !c.accept).length).toBeGreaterThan(30);
  });

  it.each(all.map(c => [c.name, c] as const))('%s', (_name, c) => {
    const config = configOf(c);
    if (c.accept) {
      const json = configToNativeJson(config as never);
      // The engine's test feeds it exactly what this function sends.
      expect(JSON.parse(json)).toEqual(toNative(config as Record<string, unknown>));
    } else {
      let thrown: unknown;
      try {
        configToNativeJson(config as never);
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(UploadError);
      expect((thrown as UploadError).code).toBe('invalid_config');
    }
  });
});
