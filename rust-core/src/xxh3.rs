//! Streaming XXH3-128 (seed 0, default secret) for whole files.
//!
//! Why our own loop on x86-64: the digest is the same as every other XXH3-128
//! (the tests check it against xxhash-rust), but twox-hash's streaming writer
//! keeps its accumulators in the hasher struct and, in the engine's release
//! build, reloads and stores them for every 64-byte stripe. The stripes then
//! wait on store-to-load forwarding instead of the multiplier, and hashing a
//! cached 2 GiB file ran at 0.76-0.80x `xxhsum`. Here the accumulators live in
//! two AVX2 registers for a whole `consume` call (a read buffer of 128 KiB),
//! which takes the hash off the profile next to the kernel's copy.
//!
//! Other targets keep twox-hash: on aarch64 it has a NEON kernel picked at run
//! time, and this machine cannot build or run aarch64 code to check a
//! hand-written one. Inputs of 240 bytes or less (hashed in one piece with
//! their own formulas) also go to twox-hash.

#[cfg(not(target_arch = "x86_64"))]
use twox_hash::XxHash3_128;

/// Streaming XXH3-128: `update` any number of times, then `digest`.
pub(crate) struct FileHasher {
    #[cfg(target_arch = "x86_64")]
    inner: Box<BlockHasher>,
    #[cfg(not(target_arch = "x86_64"))]
    inner: XxHash3_128,
}

#[cfg(target_arch = "x86_64")]
impl FileHasher {
    pub(crate) fn new() -> FileHasher {
        FileHasher {
            inner: Box::new(BlockHasher::new(Kernel::best())),
        }
    }

    pub(crate) fn update(&mut self, input: &[u8]) {
        self.inner.update(input);
    }

    pub(crate) fn digest(&self) -> u128 {
        self.inner.digest()
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl FileHasher {
    pub(crate) fn new() -> FileHasher {
        FileHasher {
            inner: XxHash3_128::new(),
        }
    }

    pub(crate) fn update(&mut self, input: &[u8]) {
        self.inner.write(input);
    }

    pub(crate) fn digest(&self) -> u128 {
        self.inner.finish_128()
    }
}

#[cfg(target_arch = "x86_64")]
use blocks::{BlockHasher, Kernel};

#[cfg(target_arch = "x86_64")]
mod blocks {
    use twox_hash::XxHash3_128;

    const STRIPE: usize = 64;
    const SECRET_LEN: usize = 192;
    /// Stripes between two scrambles: the secret moves 8 bytes per stripe.
    const STRIPES_PER_BLOCK: usize = (SECRET_LEN - STRIPE) / 8;
    /// Bytes held back between updates (at most).
    const HELD: usize = 256;
    /// Inputs up to this size have their own formulas.
    const SHORT_MAX: u64 = 240;

    const P32_1: u64 = 0x9E37_79B1;
    const P32_2: u64 = 0x85EB_CA77;
    const P32_3: u64 = 0xC2B2_AE3D;
    const P64_1: u64 = 0x9E37_79B1_85EB_CA87;
    const P64_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    const P64_3: u64 = 0x1656_67B1_9E37_79F9;
    const P64_4: u64 = 0x85EB_CA77_C2B2_AE63;
    const P64_5: u64 = 0x27D4_EB2F_1656_67C5;
    const AVALANCHE: u64 = 0x1656_6791_9E37_79F9;

    const INIT_ACC: [u64; 8] = [P32_3, P64_1, P64_2, P64_3, P64_4, P32_2, P64_5, P32_1];

    /// The default secret of XXH3 (the specification's `kSecret`).
    #[rustfmt::skip]
    const SECRET: [u8; SECRET_LEN] = [
        0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
        0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
        0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
        0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
        0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
        0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
        0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
        0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
        0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
        0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
        0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
        0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
    ];

    /// Little-endian word at byte `at`.
    fn word(bytes: &[u8], at: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(w)
    }

    /// Eight words of `bytes` starting at byte `at`.
    fn words(bytes: &[u8], at: usize) -> [u64; 8] {
        std::array::from_fn(|i| word(bytes, at + 8 * i))
    }

    /// One stripe into the accumulators, keys starting at secret byte `key_at`.
    fn accumulate_portable(acc: &mut [u64; 8], stripe: &[u8], key_at: usize) {
        let data = words(stripe, 0);
        let keys = words(&SECRET, key_at);
        for i in 0..8 {
            let k = data[i] ^ keys[i];
            acc[i ^ 1] = acc[i ^ 1].wrapping_add(data[i]);
            acc[i] = acc[i].wrapping_add((k & 0xFFFF_FFFF).wrapping_mul(k >> 32));
        }
    }

    fn scramble_portable(acc: &mut [u64; 8]) {
        let keys = words(&SECRET, SECRET_LEN - STRIPE);
        for (a, k) in acc.iter_mut().zip(keys) {
            *a = (*a ^ (*a >> 47) ^ k).wrapping_mul(P32_1);
        }
    }

    /// How the stripes are accumulated. Both give the same digest.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) enum Kernel {
        /// Plain integer code: any x86-64.
        Portable,
        /// Only constructed after the CPU was seen to have AVX2.
        Avx2(Avx2Token),
    }

    /// Proof that AVX2 was detected: only `Kernel::best` makes one.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) struct Avx2Token(());

    impl Kernel {
        pub(super) fn best() -> Kernel {
            if std::is_x86_feature_detected!("avx2") {
                Kernel::Avx2(Avx2Token(()))
            } else {
                Kernel::Portable
            }
        }

        /// Accumulates every stripe of `data` (whole stripes only), scrambling
        /// at each block end. `in_block` is the stripe index within the block.
        fn consume(self, acc: &mut [u64; 8], in_block: &mut usize, data: &[u8]) {
            debug_assert_eq!(data.len() % STRIPE, 0);
            match self {
                Kernel::Portable => {
                    let mut a = *acc;
                    for stripe in data.chunks_exact(STRIPE) {
                        accumulate_portable(&mut a, stripe, *in_block * 8);
                        *in_block += 1;
                        if *in_block == STRIPES_PER_BLOCK {
                            scramble_portable(&mut a);
                            *in_block = 0;
                        }
                    }
                    *acc = a;
                }
                // SAFETY: an `Avx2Token` exists only when the CPU has AVX2.
                Kernel::Avx2(_) => unsafe { consume_avx2(acc, in_block, data) },
            }
        }
    }

    /// The AVX2 form of `Kernel::Portable`'s loop: lanes 0-3 in one register,
    /// 4-7 in the other, for the whole call.
    #[target_feature(enable = "avx2")]
    fn consume_avx2(acc: &mut [u64; 8], in_block: &mut usize, data: &[u8]) {
        use std::arch::x86_64::*;

        #[target_feature(enable = "avx2")]
        #[inline]
        fn load(bytes: &[u8]) -> __m256i {
            let bytes: &[u8; 32] = bytes[..32].try_into().expect("32 bytes");
            // SAFETY: reads the 32 bytes of `bytes`; the load needs no alignment.
            unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
        }
        #[target_feature(enable = "avx2")]
        #[inline]
        fn lanes(acc: &[u64]) -> __m256i {
            let mut bytes = [0u8; 32];
            for (chunk, a) in bytes.chunks_exact_mut(8).zip(acc) {
                chunk.copy_from_slice(&a.to_le_bytes());
            }
            load(&bytes)
        }
        #[target_feature(enable = "avx2")]
        #[inline]
        fn unpack(v: __m256i, out: &mut [u64]) {
            let mut bytes = [0u8; 32];
            // SAFETY: writes the 32 bytes of `bytes`; no alignment needed.
            unsafe { _mm256_storeu_si256(bytes.as_mut_ptr().cast(), v) };
            for (o, chunk) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                *o = word(chunk, 0);
            }
        }

        // Two named values rather than an array or an inner loop: at the
        // size-tuned mobile opt-level an array of two was kept on the stack,
        // which brings back the store-to-load wait this loop exists to avoid.
        let accumulate = |acc: __m256i, data: __m256i, key: __m256i| {
            let k = _mm256_xor_si256(data, key);
            // acc[i ^ 1] += data[i]: swap the words of each 128-bit lane.
            let swapped = _mm256_shuffle_epi32::<0b01_00_11_10>(data);
            // acc[i] += low32(k) * high32(k)
            let product = _mm256_mul_epu32(k, _mm256_srli_epi64::<32>(k));
            _mm256_add_epi64(_mm256_add_epi64(acc, swapped), product)
        };
        let prime = _mm256_set1_epi64x(P32_1 as i64);
        let scramble = |acc: __m256i, key: __m256i| {
            let x = _mm256_xor_si256(_mm256_xor_si256(acc, _mm256_srli_epi64::<47>(acc)), key);
            // 64-bit x * P32_1 from two 32x32 products.
            let low = _mm256_mul_epu32(x, prime);
            let high = _mm256_mul_epu32(_mm256_srli_epi64::<32>(x), prime);
            _mm256_add_epi64(low, _mm256_slli_epi64::<32>(high))
        };
        let scramble_lo = load(&SECRET[SECRET_LEN - STRIPE..]);
        let scramble_hi = load(&SECRET[SECRET_LEN - STRIPE + 32..]);
        let mut lo = lanes(&acc[..4]);
        let mut hi = lanes(&acc[4..]);
        let mut pos = *in_block;
        for stripe in data.chunks_exact(STRIPE) {
            let keys = &SECRET[pos * 8..pos * 8 + STRIPE];
            lo = accumulate(lo, load(&stripe[..32]), load(&keys[..32]));
            hi = accumulate(hi, load(&stripe[32..]), load(&keys[32..]));
            pos += 1;
            if pos == STRIPES_PER_BLOCK {
                lo = scramble(lo, scramble_lo);
                hi = scramble(hi, scramble_hi);
                pos = 0;
            }
        }
        let (acc_lo, acc_hi) = acc.split_at_mut(4);
        unpack(lo, acc_lo);
        unpack(hi, acc_hi);
        *in_block = pos;
    }

    fn avalanche(mut h: u64) -> u64 {
        h ^= h >> 37;
        h = h.wrapping_mul(AVALANCHE);
        h ^ (h >> 32)
    }

    fn merge(acc: &[u64; 8], key_at: usize, start: u64) -> u64 {
        let keys = words(&SECRET, key_at);
        let mut r = start;
        for i in 0..4 {
            let m =
                u128::from(acc[2 * i] ^ keys[2 * i]) * u128::from(acc[2 * i + 1] ^ keys[2 * i + 1]);
            r = r.wrapping_add((m as u64) ^ ((m >> 64) as u64));
        }
        avalanche(r)
    }

    pub(super) struct BlockHasher {
        kernel: Kernel,
        acc: [u64; 8],
        /// Stripes of the current block already accumulated.
        in_block: usize,
        /// Input not accumulated yet: the last stripe of the whole input is
        /// hashed with other keys, so at least one byte is always held back.
        held: [u8; HELD],
        held_len: usize,
        /// The last stripe accumulated, for a final stripe that reaches back
        /// before the held bytes.
        last: [u8; STRIPE],
        total: u64,
    }

    impl BlockHasher {
        pub(super) fn new(kernel: Kernel) -> BlockHasher {
            BlockHasher {
                kernel,
                acc: INIT_ACC,
                in_block: 0,
                held: [0; HELD],
                held_len: 0,
                last: [0; STRIPE],
                total: 0,
            }
        }

        pub(super) fn update(&mut self, mut input: &[u8]) {
            self.total += input.len() as u64;
            if self.held_len + input.len() <= HELD {
                self.held[self.held_len..self.held_len + input.len()].copy_from_slice(input);
                self.held_len += input.len();
                return;
            }
            if self.held_len > 0 {
                // Fill the held bytes up and accumulate them: more input follows.
                let take = HELD - self.held_len;
                self.held[self.held_len..].copy_from_slice(&input[..take]);
                input = &input[take..];
                self.kernel
                    .consume(&mut self.acc, &mut self.in_block, &self.held);
                self.last.copy_from_slice(&self.held[HELD - STRIPE..]);
                self.held_len = 0;
            }
            if input.len() > STRIPE {
                // Whole stripes straight from the input, keeping 1-64 bytes.
                let n = (input.len() - 1) / STRIPE * STRIPE;
                let (now, rest) = input.split_at(n);
                self.kernel.consume(&mut self.acc, &mut self.in_block, now);
                self.last.copy_from_slice(&now[n - STRIPE..]);
                input = rest;
            }
            self.held[..input.len()].copy_from_slice(input);
            self.held_len = input.len();
        }

        pub(super) fn digest(&self) -> u128 {
            if self.total <= SHORT_MAX {
                // Nothing was accumulated: the whole input is held.
                return XxHash3_128::oneshot(&self.held[..self.held_len]);
            }
            let mut acc = self.acc;
            let mut in_block = self.in_block;
            let mut last = [0u8; STRIPE];
            if self.held_len >= STRIPE {
                let n = (self.held_len - 1) / STRIPE * STRIPE;
                self.kernel
                    .consume(&mut acc, &mut in_block, &self.held[..n]);
                last.copy_from_slice(&self.held[self.held_len - STRIPE..self.held_len]);
            } else {
                let back = STRIPE - self.held_len;
                last[..back].copy_from_slice(&self.last[self.held_len..]);
                last[back..].copy_from_slice(&self.held[..self.held_len]);
            }
            accumulate_portable(&mut acc, &last, SECRET_LEN - STRIPE - 7);
            let low = merge(&acc, 11, self.total.wrapping_mul(P64_1));
            let high = merge(
                &acc,
                SECRET_LEN - STRIPE - 11,
                !self.total.wrapping_mul(P64_2),
            );
            (u128::from(high) << 64) | u128::from(low)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn sample(len: usize, salt: u32) -> Vec<u8> {
            (0..len as u32)
                .map(|i| (i.wrapping_add(salt).wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect()
        }

        fn kernels() -> Vec<Kernel> {
            let mut k = vec![Kernel::Portable];
            if std::is_x86_feature_detected!("avx2") {
                k.push(Kernel::best());
            }
            k
        }

        fn digest_in_pieces(kernel: Kernel, data: &[u8], piece: usize) -> u128 {
            let mut h = BlockHasher::new(kernel);
            for p in data.chunks(piece) {
                h.update(p);
            }
            h.digest()
        }

        #[test]
        fn every_length_and_split_matches_the_reference() {
            // Lengths across the short formulas, the 240-byte edge, the held
            // buffer, one block (1024) and several; pieces that split stripes
            // and blocks everywhere.
            let data = sample(3 * 1024 + 300, 7);
            for kernel in kernels() {
                for len in 0..data.len() {
                    let want = xxhash_rust::xxh3::xxh3_128(&data[..len]);
                    for piece in [1, 63, 64, 65, 255, 256, 257, 1024, 4096] {
                        if piece == 1 && len > 1400 {
                            continue; // one byte at a time is slow; the shorter lengths cover it
                        }
                        let got = digest_in_pieces(kernel, &data[..len], piece);
                        assert_eq!(got, want, "{kernel:?}, {len} bytes in pieces of {piece}");
                    }
                }
            }
        }

        #[test]
        fn long_input_in_uneven_pieces_matches_the_reference() {
            let data = sample(5 * 1024 * 1024 + 13, 99);
            let want = xxhash_rust::xxh3::xxh3_128(&data);
            for kernel in kernels() {
                let mut h = BlockHasher::new(kernel);
                let mut rest = &data[..];
                let mut step = 1usize;
                while !rest.is_empty() {
                    let n = step.min(rest.len());
                    h.update(&rest[..n]);
                    rest = &rest[n..];
                    step = (step * 7 + 13) % 200_003;
                }
                assert_eq!(h.digest(), want, "{kernel:?}");
                // Digest does not consume: more input continues the same hash.
                h.update(b"tail");
                let mut more = data.clone();
                more.extend_from_slice(b"tail");
                assert_eq!(h.digest(), xxhash_rust::xxh3::xxh3_128(&more), "{kernel:?}");
            }
        }

        #[test]
        fn kernels_agree_on_accumulators() {
            let data = sample(64 * 37, 3);
            let mut results = Vec::new();
            for kernel in kernels() {
                let mut acc = INIT_ACC;
                let mut in_block = 5;
                kernel.consume(&mut acc, &mut in_block, &data);
                results.push((acc, in_block));
            }
            assert_eq!(results[0].1, (5 + 37) % STRIPES_PER_BLOCK);
            assert!(results.windows(2).all(|w| w[0] == w[1]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_hasher_matches_the_reference() {
        for len in [0usize, 1, 240, 241, 1024, 1025, 200_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut h = FileHasher::new();
            for piece in data.chunks(4096) {
                h.update(piece);
            }
            assert_eq!(
                h.digest(),
                xxhash_rust::xxh3::xxh3_128(&data),
                "{len} bytes"
            );
        }
    }
}
