// The Expo app templates the config plugin is tested against: the native
// project `npx expo prebuild` starts from (expo-template-bare-minimum) for
// the oldest and the newest Expo SDK the package claims, each with that
// SDK's own @expo/config-plugins. The templates come from the npm registry,
// checked against the integrity pinned here, and are kept under
// ~/.cache/s3bgu-ci/expo-templates (S3BGU_CI_CACHE moves it): a rerun needs
// no network.
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);

export const SDKS = [
  {
    sdk: 52,
    template: 'expo-template-bare-minimum',
    version: '52.0.79',
    integrity:
      'sha512-VoBUnXgFFs2UZ6KlhVonxtaI8S5x3n3wDrxtWycfJnbAwCjBCfBK/5c8GmbbFZ2RXP+T/B62682CPX+1bRFbcw==',
    // SDK 52's config-plugins (expo@52 depends on ~9.0.17), a devDependency alias.
    configPlugins: '@expo/config-plugins-52',
    appDelegate: 'ios/HelloWorld/AppDelegate.mm',
  },
  {
    sdk: 58,
    template: 'expo-template-bare-minimum',
    version: '58.0.8',
    integrity:
      'sha512-xZCAzR9qfAYMYZHhKcA9vwO9xEebkJr94a6brQdyKDzJGmjhf9q6l1bijkIer0z0RzfyMoacpjG/lOYscw0O9A==',
    configPlugins: '@expo/config-plugins',
    appDelegate: 'ios/HelloWorld/AppDelegate.swift',
  },
];

export function configPluginsOf(entry) {
  return require(entry.configPlugins);
}

/** The version of config-plugins an SDK entry loads (from its package.json). */
export function configPluginsVersion(entry) {
  const main = require.resolve(entry.configPlugins);
  let dir = path.dirname(main);
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
}

function cacheRoot() {
  return path.join(
    process.env.S3BGU_CI_CACHE || path.join(os.homedir(), '.cache', 's3bgu-ci'),
    'expo-templates',
  );
}

/** The unpacked template (its `package/` directory), fetched once. */
export function templateDir(entry) {
  const dir = path.join(cacheRoot(), `${entry.template}-${entry.version}`);
  const marker = path.join(dir, '.integrity');
  if (existsSync(marker) && readFileSync(marker, 'utf8') === entry.integrity) {
    return path.join(dir, 'package');
  }
  mkdirSync(cacheRoot(), { recursive: true });
  const work = mkdtempSync(path.join(cacheRoot(), '.fetch-'));
  try {
    const out = execFileSync(
      'npm',
      [
        'pack',
        `${entry.template}@${entry.version}`,
        '--pack-destination',
        work,
        '--json',
        '--prefer-offline',
        '--loglevel=error',
      ],
      { encoding: 'utf8', cwd: work },
    );
    const [packed] = JSON.parse(out);
    if (packed.integrity !== entry.integrity) {
      throw new Error(
        `${entry.template}@${entry.version} from the registry has integrity ${packed.integrity}, ` +
          `expected ${entry.integrity}`,
      );
    }
    const unpacked = path.join(work, 'unpacked');
    mkdirSync(unpacked);
    execFileSync('tar', ['xzf', path.join(work, packed.filename), '-C', unpacked]);
    writeFileSync(path.join(unpacked, '.integrity'), entry.integrity);
    rmSync(dir, { recursive: true, force: true });
    renameSync(unpacked, dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return path.join(dir, 'package');
}
