//! Page-aligned read buffers, and a small pool of them for part bodies.
//!
//! Why aligned: reading the page cache into a buffer that starts 16 bytes
//! past a page boundary (what malloc hands out for large blocks) made the
//! kernel's copy several times slower on the machines the benchmarks ran on
//! (1.8-5 GB/s instead of 9-10 GB/s; see bench/README.md). Starting every
//! buffer on a page boundary costs nothing and keeps reads at memory speed.

use std::sync::{Arc, Mutex};

const PAGE: usize = 4096;

/// A fixed-size byte buffer whose first byte sits on a page boundary. Plain
/// safe code: a slightly larger Vec, used from the first aligned byte.
pub(crate) struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    pub(crate) fn new(len: usize) -> AlignedBuf {
        let storage = vec![0u8; len + PAGE];
        let start = storage.as_ptr().align_offset(PAGE).min(PAGE);
        AlignedBuf {
            storage,
            start,
            len,
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

/// Buffers handed out for part bodies come back here when the HTTP stack has
/// written them, so a long upload does not allocate (and page-fault) a fresh
/// buffer for every chunk. Holds at most `keep` idle buffers.
#[derive(Clone)]
pub(crate) struct BufPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    size: usize,
    keep: usize,
    idle: Mutex<Vec<AlignedBuf>>,
}

impl BufPool {
    pub(crate) fn new(size: usize, keep: usize) -> BufPool {
        BufPool {
            inner: Arc::new(PoolInner {
                size,
                keep,
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    pub(crate) fn take(&self) -> PooledBuf {
        let buf = self
            .inner
            .idle
            .lock()
            .ok()
            .and_then(|mut idle| idle.pop())
            .unwrap_or_else(|| AlignedBuf::new(self.inner.size));
        PooledBuf {
            buf: Some(buf),
            len: 0,
            pool: self.inner.clone(),
        }
    }

    #[cfg(test)]
    fn idle(&self) -> usize {
        self.inner.idle.lock().map(|v| v.len()).unwrap_or(0)
    }
}

/// A buffer on loan from a [`BufPool`]; `len` bytes of it are valid. Goes
/// back to the pool when dropped.
pub(crate) struct PooledBuf {
    buf: Option<AlignedBuf>,
    len: usize,
    pool: Arc<PoolInner>,
}

impl PooledBuf {
    /// The whole buffer, to read into.
    pub(crate) fn space(&mut self) -> &mut [u8] {
        match self.buf.as_mut() {
            Some(b) => b.as_mut_slice(),
            None => &mut [],
        }
    }

    pub(crate) fn set_len(&mut self, len: usize) {
        self.len = len.min(self.pool.size);
    }
}

impl AsRef<[u8]> for PooledBuf {
    fn as_ref(&self) -> &[u8] {
        match self.buf.as_ref() {
            Some(b) => &b.as_slice()[..self.len],
            None => &[],
        }
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let (Some(buf), Ok(mut idle)) = (self.buf.take(), self.pool.idle.lock()) {
            if idle.len() < self.pool.keep {
                idle.push(buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_start_on_a_page_and_have_their_size() {
        for len in [1, 4096, 100_000, 256 * 1024] {
            let mut b = AlignedBuf::new(len);
            assert_eq!(b.as_slice().as_ptr() as usize % PAGE, 0);
            assert_eq!(b.as_mut_slice().len(), len);
        }
    }

    #[test]
    fn pool_reuses_and_caps_idle_buffers() {
        let pool = BufPool::new(8192, 2);
        let mut a = pool.take();
        a.space()[..3].copy_from_slice(b"abc");
        a.set_len(3);
        assert_eq!(a.as_ref(), b"abc");
        let first = a.as_ref().as_ptr();
        drop(a);
        assert_eq!(pool.idle(), 1);
        let b = pool.take();
        assert_eq!(
            b.as_ref().as_ptr(),
            first,
            "the idle buffer is handed out again"
        );
        let c = pool.take();
        let d = pool.take();
        drop((b, c, d));
        assert_eq!(pool.idle(), 2, "no more than `keep` buffers are kept");
        let mut e = pool.take();
        e.set_len(1 << 20);
        assert_eq!(e.as_ref().len(), 8192, "len is capped at the buffer size");
    }
}
