//! Keeps the served files in step with the database. [`Publisher`] serves what is on disk at
//! once after a start, then follows the change log (and the template override directory and
//! policy file) and re-renders only what changed; a change that touches every phone renders
//! in the background while phones keep their previous files. [`trial_render`] is the check
//! every change passes before it commits; [`render_site`] renders for previews.
//!
//! Inside: [`bundle`] loads what rendering needs a page of phones at a time, [`build`]
//! renders it, [`publisher`] owns the loop and the files on disk.

use crate::firmware::policy::Policy;
use crate::mac::Mac;
use crate::render::{RenderError, Renderer, SiteFiles};
use crate::store::{self, Conn, Scope, StoreError};

mod build;
mod bundle;
mod firmware;
mod publisher;
pub use firmware::{denied_assignments, rollout, stored_verdict};
pub use publisher::{Control, Publisher};

use build::{Sink, admit, merge, page, shared_into, shell};
use bundle::{load_head, load_one, load_page};

/// Why publishing failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("firmware policy: {0}")]
    Policy(#[from] crate::firmware::policy::PolicyError),
    #[error("rendered files under the data dir: {0}")]
    Io(#[from] std::io::Error),
}

impl From<build::PageError> for PublishError {
    fn from(e: build::PageError) -> PublishError {
        match e {
            build::PageError::Render(e) => PublishError::Render(e),
            build::PageError::Io(e) => PublishError::Io(e),
        }
    }
}

/// Renders a site (its shared files, then its phones a page at a time, or only `only`) into
/// `sink`, failing on the first error.
async fn render_strict(
    conn: &mut Conn,
    renderer: &Renderer,
    policy: &Policy,
    site_id: i64,
    only: Option<Mac>,
    memory: bool,
) -> Result<Option<SiteFiles>, PublishError> {
    let Some(head) = load_head(conn, site_id).await? else {
        return Ok(None);
    };
    let head = admit(head, policy);
    let mut out = shell(&head.site);
    if only.is_none() || memory {
        shared_into(renderer, &head, &mut out, None, true)?;
    }
    let sink = || match memory {
        true => Sink::Memory,
        false => Sink::Discard,
    };
    if let Some(mac) = only {
        let b = load_one(conn, &head, mac).await?;
        merge(&mut out, page(renderer, policy, &b, sink(), true)?.meta);
        return Ok(Some(out));
    }
    let mut after = None;
    loop {
        let b = load_page(conn, &head, after).await?;
        let Some(last) = b.phones.last().map(|p| p.mac) else {
            break;
        };
        after = Some(last);
        merge(&mut out, page(renderer, policy, &b, sink(), true)?.meta);
    }
    Ok(Some(out))
}

/// Renders what a change touches, from inside its transaction, failing on the first error:
/// the check every change passes before it commits, so a change that cannot render changes
/// nothing. A phone's change renders that phone only; a site's, the whole site (a page at a
/// time, keeping nothing).
pub async fn trial_render(
    conn: &mut Conn,
    renderer: &Renderer,
    policy: &Policy,
    scope: Scope,
) -> Result<(), PublishError> {
    match scope {
        Scope::Phone(site_id, mac) => {
            render_strict(conn, renderer, policy, site_id, Some(mac), false).await?;
        }
        Scope::Site(site_id) => {
            render_strict(conn, renderer, policy, site_id, None, false).await?;
        }
        Scope::All => {
            for site in store::list_sites(conn).await? {
                render_strict(conn, renderer, policy, site.id, None, false).await?;
            }
        }
    }
    Ok(())
}

/// Renders a site's shared files and its phones (or only the phone `only`) now, in memory,
/// failing on the first error: previews and the CLI's `render`.
pub async fn render_site(
    conn: &mut Conn,
    renderer: &Renderer,
    policy: &Policy,
    site_id: i64,
    only: Option<Mac>,
) -> Result<Option<SiteFiles>, PublishError> {
    render_strict(conn, renderer, policy, site_id, only, true).await
}
