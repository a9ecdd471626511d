//! Console users: who they are, their role and their argon2-hashed password; the verbs the
//! `user` command and the console share ([`Users`]), the sessions a login opens
//! ([`sessions`]), and how failed logins are slowed ([`throttle`]).

pub mod sessions;
pub mod throttle;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::model::{Action, Role, User};
use crate::store::{self, Store, StoreError};

/// What went wrong with a user verb.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    Invalid(String),
    #[error("no user '{0}'")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = UserError> = std::result::Result<T, E>;

/// The shortest password accepted: a passphrase, not a PIN.
pub const MIN_PASSWORD: usize = 12;

/// The user verbs over a database.
#[derive(Clone, Debug)]
pub struct Users {
    pub store: Store,
}

/// Checks a user name: what a person types, short and plain.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(UserError::Invalid(format!(
            "user name '{name}': 1 to 64 letters, digits, '.', '_', '-' or '@'"
        )))
    }
}

fn check_password(p: &str) -> Result<()> {
    if p.chars().count() < MIN_PASSWORD {
        return Err(UserError::Invalid(format!(
            "the password is too short: at least {MIN_PASSWORD} characters"
        )));
    }
    if p.len() > 1024 {
        return Err(UserError::Invalid(
            "the password is longer than 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes: OWASP's recommendation).
fn hasher() -> argon2::Argon2<'static> {
    argon2::Argon2::default()
}

/// Hashes a password into a PHC string (`$argon2id$v=19$…`), on a blocking thread.
pub async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| UserError::Hash(e.to_string()))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| UserError::Hash(e.to_string()))?;
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| UserError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| UserError::Hash(e.to_string()))?
}

/// Whether `password` matches the PHC string `hash`, on a blocking thread.
pub async fn verify_password(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_string(), hash.to_string());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash no password matches, checked for unknown names so they take as long as known ones.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$cGhvbmVwcm92LWRlY295$0Hk2d3hbUqWm0tDZqJ0l8mE5b1o0b2s0bTZ1b2F0cHM";

impl Users {
    pub async fn add(&self, name: &str, role: Role, password: &str) -> Result<User> {
        let name = name.trim();
        check_name(name)?;
        check_password(password)?;
        let hash = hash_password(password).await?;
        let mut conn = self.store.conn().await?;
        match store::insert_user(&mut conn, name, role, &hash, store::now_ms()).await {
            Err(e) if e.is_unique_violation() => {
                return Err(UserError::Conflict(format!("user '{name}' already exists")));
            }
            r => r?,
        }
        tracing::info!(user = %name, %role, "console user added");
        store::user_named(&mut conn, name)
            .await?
            .ok_or_else(|| UserError::NotFound(name.to_string()))
    }

    pub async fn list(&self) -> Result<Vec<User>> {
        Ok(store::users(&mut *self.store.conn().await?).await?)
    }

    /// Removes a user and every session they have open. The last admin stays.
    pub async fn rm(&self, name: &str) -> Result<User> {
        let mut tx = self.store.begin().await?;
        let user = store::user_named(&mut tx, name.trim())
            .await?
            .ok_or_else(|| UserError::NotFound(name.trim().to_string()))?;
        if user.role == Role::Admin && store::admin_count(&mut tx).await? <= 1 {
            return Err(UserError::Conflict(format!(
                "'{}' is the last admin: add another admin first",
                user.name
            )));
        }
        store::delete_user(&mut tx, user.id).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(user = %user.name, "console user removed, sessions ended");
        Ok(user)
    }

    /// Sets a new password; the user's open sessions end.
    pub async fn set_password(&self, name: &str, password: &str) -> Result<()> {
        check_password(password)?;
        let hash = hash_password(password).await?;
        let mut conn = self.store.conn().await?;
        let user = store::user_named(&mut conn, name.trim())
            .await?
            .ok_or_else(|| UserError::NotFound(name.trim().to_string()))?;
        store::set_password(&mut conn, user.id, &hash).await?;
        Ok(())
    }

    /// The user a name and password prove, if they do. An unknown name costs the same hash
    /// check as a known one, so time does not tell which names exist.
    pub async fn authenticate(&self, name: &str, password: &str) -> Result<Option<User>> {
        let user = store::user_named(&mut *self.store.conn().await?, name.trim()).await?;
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.as_str())
            .unwrap_or(DECOY_HASH);
        let ok = verify_password(password, hash).await;
        Ok(user.filter(|_| ok))
    }

    /// Records a change made through the console by `user` from `peer`.
    pub async fn record(&self, user: &User, peer: &str, action: &str, detail: &str) -> Result<()> {
        self.record_as(&user.name, user.role.as_str(), peer, action, detail)
            .await
    }

    /// Records a change made by `who` in the capacity `role` (`admin`, or `api` for an admin
    /// API token) from `peer`.
    pub async fn record_as(
        &self,
        who: &str,
        role: &str,
        peer: &str,
        action: &str,
        detail: &str,
    ) -> Result<()> {
        let a = Action {
            at: store::now_ms(),
            user: who.to_string(),
            role: role.to_string(),
            peer: peer.to_string(),
            action: action.to_string(),
            detail: detail.to_string(),
        };
        tracing::info!(user = %a.user, peer = %a.peer, action = %a.action, detail = %a.detail, "console change");
        Ok(store::log_action(&mut *self.store.conn().await?, &a).await?)
    }

    /// Changes made through the console, newest first.
    pub async fn actions(&self, user: Option<&str>, limit: i64) -> Result<Vec<Action>> {
        Ok(store::actions(&mut *self.store.conn().await?, user, limit.clamp(1, 10_000)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let h = hash_password("correct horse battery").await.unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h).await);
        assert!(!verify_password("correct horse batterx", &h).await);
        // The decoy is a well-formed hash that nothing matches.
        assert!(PasswordHash::new(DECOY_HASH).is_ok());
        assert!(!verify_password("", DECOY_HASH).await);
    }

    #[test]
    fn names_and_passwords_are_checked() {
        assert!(check_name("alice@msp.example").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("<script>").is_err());
        assert!(check_password("short").is_err());
        assert!(check_password("twelve chars").is_ok());
    }
}
