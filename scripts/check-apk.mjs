#!/usr/bin/env node
// Checks the native libraries inside an APK the way a device with 16 KB
// pages loads them (Android 15+; Google Play requires it of new apps):
//   - every lib/<abi>/*.so of a 64-bit ABI (arm64-v8a, x86_64: the ABIs that
//     run on 16 KB pages; the NDK and Android's own check align only those)
//     and this package's own libraries on every ABI are stored (not
//     deflated), their data starting at a 16 KB boundary of the file, so they
//     can be mapped straight from the APK (what `zipalign -c -P 16` checks);
//   - every PT_LOAD segment of each of those ELF files is aligned to at
//     least 16 KB (other 32-bit libraries, React Native's or the NDK's, are
//     listed, not held to it);
//   - the engine (libs3bgu_core.so) and JNA's dispatcher (libjnidispatch.so)
//     are there for every ABI given with --abis.
// Prints each library's size per ABI.
//
//   node scripts/check-apk.mjs APK [--abis arm64-v8a,armeabi-v7a,x86_64,x86]
import { closeSync, openSync, readSync, fstatSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PAGE = 16384;
export const REQUIRED_LIBS = ['libs3bgu_core.so', 'libjnidispatch.so'];
/** ABIs whose devices may use 16 KB pages. */
export const SIXTEEN_KB_ABIS = ['arm64-v8a', 'x86_64'];

/** Whether a library must be 16 KB-ready: all of a 64-bit ABI, ours everywhere. */
export function heldTo16k(name) {
  const [, abi, file] = name.split('/');
  return SIXTEEN_KB_ABIS.includes(abi) || REQUIRED_LIBS.includes(file);
}

function readAt(fd, offset, length) {
  const buf = Buffer.alloc(length);
  const n = readSync(fd, buf, 0, length, offset);
  return buf.subarray(0, n);
}

/** The central directory of a zip: name, method, sizes and local header offset of each entry. */
export function zipEntries(fd) {
  const size = fstatSync(fd).size;
  // The end-of-central-directory record is in the last 22 + 65535 bytes.
  const tailLength = Math.min(size, 22 + 65535);
  const tail = readAt(fd, size - tailLength, tailLength);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip file (no end of central directory)');
  const count = tail.readUInt16LE(eocd + 10);
  const cdSize = tail.readUInt32LE(eocd + 12);
  const cdOffset = tail.readUInt32LE(eocd + 16);
  if (cdOffset === 0xffffffff || count === 0xffff) throw new Error('zip64 APKs are not supported');
  const cd = readAt(fd, cdOffset, cdSize);
  const entries = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (cd.readUInt32LE(p) !== 0x02014b50) throw new Error(`bad central directory entry ${i}`);
    const method = cd.readUInt16LE(p + 10);
    const compressedSize = cd.readUInt32LE(p + 20);
    const uncompressedSize = cd.readUInt32LE(p + 24);
    const nameLength = cd.readUInt16LE(p + 28);
    const extraLength = cd.readUInt16LE(p + 30);
    const commentLength = cd.readUInt16LE(p + 32);
    const localOffset = cd.readUInt32LE(p + 42);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLength);
    entries.push({ name, method, compressedSize, uncompressedSize, localOffset });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** Where an entry's data starts: after its local header, whose extra field may differ from the central one. */
export function dataOffset(fd, entry) {
  const h = readAt(fd, entry.localOffset, 30);
  if (h.length < 30 || h.readUInt32LE(0) !== 0x04034b50) {
    throw new Error(`${entry.name}: no local file header at ${entry.localOffset}`);
  }
  return entry.localOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
}

/** p_align of every PT_LOAD segment of an ELF image (32- or 64-bit, little-endian). */
export function loadAlignments(elf) {
  if (elf.length < 52 || elf.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file');
  const is64 = elf[4] === 2;
  if (elf[5] !== 1) throw new Error('big-endian ELF (no Android ABI is)');
  const phoff = is64 ? Number(elf.readBigUInt64LE(0x20)) : elf.readUInt32LE(0x1c);
  const phentsize = elf.readUInt16LE(is64 ? 0x36 : 0x2a);
  const phnum = elf.readUInt16LE(is64 ? 0x38 : 0x2c);
  const aligns = [];
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (elf.readUInt32LE(ph) !== 1) continue; // PT_LOAD
    aligns.push(is64 ? Number(elf.readBigUInt64LE(ph + 0x30)) : elf.readUInt32LE(ph + 0x1c));
  }
  return aligns;
}

/** Problems (empty when the APK is fine) and one line per library checked. */
export function checkApk(apk, abis) {
  const fd = openSync(apk, 'r');
  const problems = [];
  const lines = [];
  try {
    const libs = zipEntries(fd).filter(e => /^lib\/[^/]+\/[^/]+\.so$/.test(e.name));
    if (libs.length === 0) problems.push('no lib/<abi>/*.so in the APK');
    for (const e of libs) {
      const at = dataOffset(fd, e);
      const bad = [];
      if (e.method !== 0)
        bad.push(`compressed (method ${e.method}): it cannot be mapped from the APK`);
      if (at % PAGE !== 0)
        bad.push(`data at offset ${at}, not on a 16 KB boundary (${at % PAGE} over)`);
      if (e.method === 0) {
        let aligns = [];
        try {
          aligns = loadAlignments(readAt(fd, at, e.uncompressedSize));
        } catch (err) {
          bad.push(err.message);
        }
        const low = aligns.filter(a => a < PAGE);
        if (aligns.length === 0 && bad.length === 0) bad.push('no LOAD segment');
        if (low.length > 0) {
          bad.push(
            `LOAD segments aligned below 16 KB: ${low.map(a => `0x${a.toString(16)}`).join(' ')}`,
          );
        }
      }
      if (bad.length > 0 && !heldTo16k(e.name)) {
        lines.push(`note ${e.name}: ${bad.join('; ')} (a 32-bit ABI: not held to 16 KB pages)`);
      } else if (bad.length > 0) problems.push(...bad.map(b => `${e.name}: ${b}`));
      else
        lines.push(
          `ok   ${e.name}: ${e.uncompressedSize} bytes, stored at a 16 KB boundary, LOAD segments >= 16 KB`,
        );
    }
    for (const abi of abis) {
      for (const lib of REQUIRED_LIBS) {
        if (!libs.some(e => e.name === `lib/${abi}/${lib}`))
          problems.push(`lib/${abi}/${lib}: missing`);
      }
    }
  } finally {
    closeSync(fd);
  }
  return { problems, lines };
}

function main(args) {
  const apk = args[0];
  const i = args.indexOf('--abis');
  const abis =
    i >= 0 ? args[i + 1].split(',').filter(Boolean) : ['arm64-v8a', 'armeabi-v7a', 'x86_64', 'x86'];
  if (!apk) {
    console.error('usage: check-apk.mjs APK [--abis a,b,c]');
    return 2;
  }
  const { problems, lines } = checkApk(apk, abis);
  for (const l of lines) console.log(l);
  for (const p of problems) console.log(`FAIL ${p}`);
  console.log(
    `check-apk: ${path.basename(apk)}: ${lines.length} libraries ok, ${problems.length} problems`,
  );
  return problems.length === 0 ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    console.error(`check-apk: ${e.message}`);
    process.exitCode = 2;
  }
}
