//! Requests on the wire waiting for their replies. Replies come back in
//! request order (per connection FIFO), so each reply must carry the xid of
//! the oldest pending request; anything else means the stream is corrupt.

use std::collections::VecDeque;

/// Allocates request xids: 1, 2, 3, ... wrapping from `i32::MAX` back to 1
/// (never zero or negative, which are special).
#[derive(Debug, Clone)]
pub struct XidGen {
    next: i32,
}

impl Default for XidGen {
    fn default() -> Self {
        XidGen { next: 1 }
    }
}

impl XidGen {
    /// The next xid: 1 upwards, wrapping to 1 (negative xids are reserved).
    pub fn next_xid(&mut self) -> i32 {
        let xid = self.next;
        self.next = if xid == i32::MAX { 1 } else { xid + 1 };
        xid
    }
}

/// A reply whose xid is not the oldest pending request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("xid mismatch: expected {expected:?}, got {got}")]
pub struct XidMismatch {
    /// `None` when nothing was pending at all.
    pub expected: Option<i32>,
    /// The xid that arrived.
    pub got: i32,
}

/// The FIFO of requests sent and not yet answered.
#[derive(Debug)]
pub struct PendingQueue<T> {
    queue: VecDeque<(i32, T)>,
}

impl<T> Default for PendingQueue<T> {
    fn default() -> Self {
        PendingQueue {
            queue: VecDeque::new(),
        }
    }
}

impl<T> PendingQueue<T> {
    /// Records a request sent with `xid`.
    pub fn push(&mut self, xid: i32, entry: T) {
        self.queue.push_back((xid, entry));
    }

    /// Takes the request a reply with `xid` answers. On a mismatch the
    /// queue is left as it was: the caller drops the connection and fails
    /// everything.
    pub fn complete(&mut self, xid: i32) -> Result<T, XidMismatch> {
        match self.queue.front() {
            Some((expected, _)) if *expected == xid => Ok(self
                .queue
                .pop_front()
                .map(|(_, e)| e)
                .expect("front exists")),
            front => Err(XidMismatch {
                expected: front.map(|(x, _)| *x),
                got: xid,
            }),
        }
    }

    /// How many requests await replies.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing awaits a reply.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Everything still pending, oldest first.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.queue.drain(..).map(|(_, e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xids_start_at_one_and_wrap_to_one() {
        let mut gen = XidGen::default();
        assert_eq!(gen.next_xid(), 1);
        assert_eq!(gen.next_xid(), 2);
        gen.next = i32::MAX;
        assert_eq!(gen.next_xid(), i32::MAX);
        assert_eq!(gen.next_xid(), 1);
    }

    #[test]
    fn replies_complete_requests_in_order() {
        let mut q = PendingQueue::default();
        q.push(1, "a");
        q.push(2, "b");
        assert_eq!(q.complete(1), Ok("a"));
        assert_eq!(q.complete(2), Ok("b"));
        assert!(q.is_empty());
    }

    #[test]
    fn an_out_of_order_xid_is_a_mismatch_and_keeps_the_queue() {
        let mut q = PendingQueue::default();
        q.push(1, "a");
        q.push(2, "b");
        assert_eq!(
            q.complete(2),
            Err(XidMismatch {
                expected: Some(1),
                got: 2
            })
        );
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn a_reply_with_nothing_pending_is_a_mismatch() {
        let mut q: PendingQueue<()> = PendingQueue::default();
        assert_eq!(
            q.complete(5),
            Err(XidMismatch {
                expected: None,
                got: 5
            })
        );
    }
}
