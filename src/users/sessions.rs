//! Console sessions: a login opens one, kept in the database as the SHA-256 of a random token
//! (the cookie holds the token), ended by logout, by the user's removal, after an idle time and
//! after an absolute lifetime. Each session's CSRF token is derived from its token, so forms
//! carry a value only the session's holder can know.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::model::User;
use crate::store::{self, Store, StoreError};

/// How long a session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Ends after this long without a request.
    pub idle: Duration,
    /// Ends this long after login, however busy.
    pub lifetime: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle: Duration::from_secs(30 * 60),
            lifetime: Duration::from_secs(12 * 3600),
        }
    }
}

/// A live session, as a request proves it.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    /// The value every form of this session carries.
    pub csrf: String,
    token_sha256: String,
}

/// Opens, checks and ends sessions.
#[derive(Clone, Debug)]
pub struct Sessions {
    store: Store,
    policy: SessionPolicy,
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The CSRF token of the session whose cookie holds `token`.
fn csrf_of(token: &str) -> String {
    sha256_hex(&format!("phoneprov-csrf:{token}"))[..40].to_string()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Sessions {
    pub fn new(store: Store, policy: SessionPolicy) -> Sessions {
        Sessions { store, policy }
    }

    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    /// Opens a session for `user`; returns the token for the cookie.
    pub async fn open(&self, user: &User, peer: &str) -> Result<String, StoreError> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw)
            .map_err(|e| StoreError::Unsupported(format!("no randomness: {e}")))?;
        let token = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, raw);
        let mut conn = self.store.conn().await?;
        store::insert_session(
            &mut conn,
            &sha256_hex(&token),
            user.id,
            peer,
            store::now_ms(),
        )
        .await?;
        Ok(token)
    }

    /// The live session of a cookie's token, if it is one; an expired one is removed.
    pub async fn check(&self, token: &str) -> Result<Option<Session>, StoreError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let key = sha256_hex(token);
        let mut conn = self.store.conn().await?;
        let Some(row) = store::session(&mut conn, &key).await? else {
            return Ok(None);
        };
        let now = store::now_ms();
        let idle_for = now - row.last_used_at;
        if idle_for > ms(self.policy.idle) || now - row.created_at > ms(self.policy.lifetime) {
            store::delete_session(&mut conn, &key).await?;
            tracing::info!(user = %row.user.name, "console session expired");
            return Ok(None);
        }
        // Written at most a few times per idle period, not on every page.
        if idle_for > ms(self.policy.idle / 8).min(60_000) {
            store::touch_session(&mut conn, &key, now).await?;
        }
        Ok(Some(Session {
            user: row.user,
            csrf: csrf_of(token),
            token_sha256: key,
        }))
    }

    /// Ends a session (logout).
    pub async fn close(&self, s: &Session) -> Result<(), StoreError> {
        store::delete_session(&mut *self.store.conn().await?, &s.token_sha256).await
    }

    /// Removes every expired session (run now and then).
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        let now = store::now_ms();
        store::delete_stale_sessions(
            &mut *self.store.conn().await?,
            now - ms(self.policy.idle),
            now - ms(self.policy.lifetime),
        )
        .await
    }
}

impl Session {
    /// Whether a form's CSRF value is this session's (in constant time).
    pub fn csrf_ok(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq;
        given.len() == self.csrf.len() && bool::from(given.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_token_depends_on_the_session_token() {
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert_eq!(csrf_of("a"), csrf_of("a"));
        assert_eq!(csrf_of("a").len(), 40);
    }
}
