//! Settling deliveries of one consumer channel: acks are coalesced into `multiple` acks
//! where the deliveries before them are settled too, so the broker gets far fewer frames.

use lapin::{
    Channel,
    options::{BasicAckOptions, BasicRejectOptions},
};
use std::collections::BTreeSet;
use tokio::{sync::mpsc, task::JoinHandle};

/// How a delivery ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    Ack,
    /// Back to the queue for another try (`basic.reject` with requeue, which counts toward
    /// the queue's delivery limit on every RabbitMQ version).
    Requeue,
}

/// The settling task of one channel. Every delivery must end in exactly one `Pending`
/// settled or dropped; the task sends the frames.
pub struct Settler {
    tx: mpsc::UnboundedSender<(u64, Settle)>,
    task: JoinHandle<()>,
}

/// One delivery not settled yet. Dropping it unsettled (a panicking handler, a task
/// aborted at the end of the grace period) requeues it, so no later ack waits for it.
pub struct Pending {
    tag: u64,
    tx: Option<mpsc::UnboundedSender<(u64, Settle)>>,
}

impl Settler {
    /// Starts settling for a channel whose consumer has just started (delivery tags count
    /// from 1 on every new channel).
    pub fn start(channel: Channel) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(channel, rx));
        Self { tx, task }
    }

    pub fn pending(&self, delivery_tag: u64) -> Pending {
        Pending {
            tag: delivery_tag,
            tx: Some(self.tx.clone()),
        }
    }

    /// Sends what is left once every `Pending` is gone.
    pub async fn finish(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

impl Pending {
    pub fn ack(mut self) {
        self.send(Settle::Ack);
    }

    pub fn requeue(mut self) {
        self.send(Settle::Requeue);
    }

    fn send(&mut self, how: Settle) {
        if let Some(tx) = self.tx.take() {
            // The task ends only after every sender is gone, so this cannot fail while it
            // matters; if the channel died, the broker redelivers anyway.
            let _ = tx.send((self.tag, how));
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.send(Settle::Requeue);
    }
}

async fn run(channel: Channel, mut rx: mpsc::UnboundedReceiver<(u64, Settle)>) {
    let mut window = Window::default();
    while let Some(first) = rx.recv().await {
        // Whatever else finished meanwhile is settled in the same round.
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        for frame in window.settle(batch) {
            let sent = match frame {
                Frame::Ack { tag, multiple } => channel.basic_ack(tag, BasicAckOptions { multiple }).await,
                Frame::Reject { tag } => channel.basic_reject(tag, BasicRejectOptions { requeue: true }).await,
            };
            if let Err(e) = sent {
                // The channel is gone; the broker redelivers what was not acked.
                tracing::warn!(error = %e, "could not settle deliveries; they will be redelivered");
                return;
            }
        }
    }
}

/// A frame to send, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Ack { tag: u64, multiple: bool },
    Reject { tag: u64 },
}

/// Which delivery tags are settled. Pure, so the coalescing is tested without a broker.
#[derive(Debug)]
struct Window {
    /// The lowest tag not settled yet: everything below it is.
    next: u64,
    /// Tags above `next` already settled by a frame of their own.
    ahead: BTreeSet<u64>,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            next: 1,
            ahead: BTreeSet::new(),
        }
    }
}

impl Window {
    /// The frames that settle `batch`: rejects first, one `multiple` ack for the run of
    /// settled tags from `next`, and single acks for the rest, which do not wait for a
    /// slow delivery before them.
    fn settle(&mut self, mut batch: Vec<(u64, Settle)>) -> Vec<Frame> {
        batch.sort_unstable_by_key(|(tag, _)| *tag);
        let mut frames = Vec::new();
        let mut acks = BTreeSet::new();
        for (tag, how) in batch {
            if tag < self.next || self.ahead.contains(&tag) {
                continue; // settled already: sending it again would close the channel
            }
            match how {
                Settle::Requeue => {
                    frames.push(Frame::Reject { tag });
                    self.ahead.insert(tag);
                }
                Settle::Ack => {
                    acks.insert(tag);
                }
            }
        }
        let mut upto = None;
        loop {
            if acks.remove(&self.next) {
                upto = Some(self.next);
            } else if !self.ahead.remove(&self.next) {
                break;
            }
            self.next += 1;
        }
        if let Some(tag) = upto {
            frames.push(Frame::Ack { tag, multiple: true });
        }
        for tag in acks {
            frames.push(Frame::Ack { tag, multiple: false });
            self.ahead.insert(tag);
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::{Frame, Settle, Window};
    use Settle::{Ack, Requeue};

    #[test]
    fn coalesces_acks_and_never_settles_a_tag_twice() {
        // (batch settled together, frames expected)
        type Case<'a> = (&'a [(u64, Settle)], &'a [Frame]);
        let cases: &[Case] = &[
            // In order: one multiple ack.
            (
                &[(1, Ack), (2, Ack), (3, Ack)],
                &[Frame::Ack { tag: 3, multiple: true }],
            ),
            // 4 is slow: 5 and 6 are acked alone rather than waiting.
            (
                &[(6, Ack), (5, Ack)],
                &[
                    Frame::Ack {
                        tag: 5,
                        multiple: false,
                    },
                    Frame::Ack {
                        tag: 6,
                        multiple: false,
                    },
                ],
            ),
            // 4 arrives: the run 4..=6 is settled, and 7 joins it.
            (&[(4, Ack), (7, Ack)], &[Frame::Ack { tag: 7, multiple: true }]),
            // A requeue in the middle goes first; the ack after it still covers the run.
            (
                &[(8, Ack), (9, Requeue), (10, Ack)],
                &[
                    Frame::Reject { tag: 9 },
                    Frame::Ack {
                        tag: 10,
                        multiple: true,
                    },
                ],
            ),
            // A repeat of a settled tag sends nothing.
            (&[(10, Ack), (2, Requeue)], &[]),
        ];
        let mut window = Window::default();
        for (batch, expected) in cases {
            assert_eq!(window.settle(batch.to_vec()), expected.to_vec(), "batch {batch:?}");
        }
        assert_eq!(window.next, 11);
        assert!(window.ahead.is_empty());
    }
}
