//! What waits for a stream's downlink thread, bounded whatever the peer
//! sends. The credit window bounds the bytes (a peer that sends beyond it
//! loses the stream); this bounds the chunks they come in: a DATA chunk
//! joins the one before it while both fit in one frame's payload, so a
//! window's worth of one-byte frames is a handful of chunks, not
//! millions. At most one EOF and one credit return wait at a time.

use crate::wire::tunnel::MAX_DATA;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

pub(crate) enum Chunk {
    Data(Vec<u8>),
    Eof,
    /// Return the credit the reader owes for bytes it wrote itself.
    Credit,
}

#[derive(Default)]
struct Inner {
    chunks: VecDeque<Chunk>,
    closed: bool,
}

#[derive(Default)]
pub(crate) struct Queue {
    inner: Mutex<Inner>,
    cv: Condvar,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue `c`. Whether it took a new place in the queue: false when it
    /// joined the chunk before it, was one already waiting (an EOF, a
    /// credit return) or the queue is closed.
    pub(crate) fn push(&self, c: Chunk) -> bool {
        let mut q = self.lock();
        if q.closed {
            return false;
        }
        let joined = match (q.chunks.back_mut(), &c) {
            (Some(Chunk::Data(last)), Chunk::Data(v)) if last.len() + v.len() <= MAX_DATA => {
                last.extend_from_slice(v);
                true
            }
            (_, Chunk::Eof) => q.chunks.iter().any(|c| matches!(c, Chunk::Eof)),
            (_, Chunk::Credit) => q.chunks.iter().any(|c| matches!(c, Chunk::Credit)),
            _ => false,
        };
        if joined {
            return false;
        }
        q.chunks.push_back(c);
        self.cv.notify_one();
        true
    }

    /// The next chunk, waiting for one; None once the queue is closed.
    pub(crate) fn pop(&self) -> Option<Chunk> {
        let mut q = self.lock();
        loop {
            if q.closed {
                return None;
            }
            if let Some(c) = q.chunks.pop_front() {
                return Some(c);
            }
            q = self.cv.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Drop what waits and take no more: the stream is gone.
    pub(crate) fn close(&self) {
        let mut q = self.lock();
        q.closed = true;
        q.chunks.clear();
        self.cv.notify_all();
    }

    /// Chunks waiting now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().chunks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_data_joins_and_eof_and_credit_wait_once() {
        let q = Queue::default();
        assert!(q.push(Chunk::Data(vec![1])));
        for _ in 0..100_000 {
            assert!(!q.push(Chunk::Data(vec![2])));
        }
        assert_eq!(q.len(), 1);
        assert!(q.push(Chunk::Credit));
        assert!(!q.push(Chunk::Credit));
        assert!(q.push(Chunk::Data(vec![3; MAX_DATA])), "after a credit");
        assert!(q.push(Chunk::Data(vec![4])), "a full chunk takes no more");
        assert!(q.push(Chunk::Eof));
        assert!(!q.push(Chunk::Eof));
        assert_eq!(q.len(), 5);
        assert!(matches!(q.pop(), Some(Chunk::Data(v)) if v.len() == 100_001));
        q.close();
        assert!(q.pop().is_none());
        assert!(!q.push(Chunk::Data(vec![5])));
        assert_eq!(q.len(), 0);
    }
}
