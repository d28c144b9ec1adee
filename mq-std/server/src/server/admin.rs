//! Operators' requests in the broker task: answered at once, or, for a purge
//! or delete, once the store has its record.

use mq_client::client::Admin;
use mq_core::broker::admin::AdminReply;
use tokio::sync::oneshot;

use super::BrokerTask;

/// An answer waiting for the record with `token` to be stored.
pub(super) struct Waiter {
    token: u64,
    reply: AdminReply,
    to: oneshot::Sender<AdminReply>,
}

impl BrokerTask {
    pub(super) fn admin(
        &mut self,
        request: &Admin,
        to: oneshot::Sender<AdminReply>,
        now: mq_core::Instant,
    ) {
        let (reply, token) = self.broker.admin(now, &request.request());
        match token {
            Some(token) => self.admin_waiters.push(Waiter { token, reply, to }),
            None => {
                let _ = to.send(reply);
            }
        }
    }

    /// Answers the purges and deletes whose records are stored.
    pub(super) fn answer_admins(&mut self) {
        if self.admin_waiters.is_empty() {
            return;
        }
        let stored = self.broker.persisted_token();
        let (done, waiting) = std::mem::take(&mut self.admin_waiters)
            .into_iter()
            .partition(|w| w.token <= stored);
        self.admin_waiters = waiting;
        for w in done {
            let _ = w.to.send(w.reply);
        }
    }
}
