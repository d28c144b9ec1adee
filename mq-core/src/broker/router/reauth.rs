//! Auth changed under live connections (new tokens, identities or
//! permissions; an identity the adapter no longer vouches for): each live
//! session is checked again. One whose credentials are no longer accepted, or
//! whose subscriptions its new permissions no longer cover, is closed with the
//! reason; the others keep going with their new permissions.

use alloc::vec::Vec;

use super::Router;
use crate::broker::ConnId;
use crate::broker::auth::Credentials;
use crate::broker::command::Output;
use crate::time::Instant;
use crate::topic::Filter;
use crate::wire::Reason;

impl Router {
    /// Checks every live session against `cfg.auth`; returns how many
    /// connections were closed.
    pub(crate) fn reauthorize_all(&mut self, now: Instant) -> usize {
        let ids: Vec<ConnId> = self.links.ids().collect();
        ids.into_iter()
            .filter(|&conn| self.reauthorize(conn, now))
            .count()
    }

    /// Checks `conn`'s session against `cfg.auth`; true when it was closed.
    pub(crate) fn reauthorize(&mut self, conn: ConnId, now: Instant) -> bool {
        let Some(link) = self.links.get(conn).filter(|l| !l.closing) else {
            return false;
        };
        // A link this node opened: its session is the node's own.
        if self.mesh.is_link(conn) {
            return false;
        }
        let Some(key) = link.session else {
            // Still in its handshake: its connect is checked under the new auth.
            return false;
        };
        let Some(s) = self.sessions.get(key) else {
            return false;
        };
        let creds = Credentials {
            client_id: &s.client,
            token: link.token.as_deref(),
            identity: link.identity.as_deref(),
        };
        let refusal = match self.cfg.auth.authorize(&creds) {
            None => Some((Reason::BadToken, "credentials revoked")),
            Some(perms) => {
                let uncovered = s
                    .subs
                    .values()
                    .filter_map(|&k| self.subs.get(k))
                    .any(|sub| Filter::new(&sub.filter).is_ok_and(|f| !perms.may_subscribe(f)));
                if uncovered {
                    Some((
                        Reason::NotAuthorized,
                        "permission for a subscription revoked",
                    ))
                } else {
                    if let Some(s) = self.sessions.get_mut(key) {
                        s.perms = perms;
                    }
                    None
                }
            }
        };
        let Some((reason, text)) = refusal else {
            return false;
        };
        self.stats.auth_failures += 1;
        self.end_with(conn, now, Output::Error(reason, text));
        true
    }
}
