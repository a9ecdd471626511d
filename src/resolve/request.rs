//! What a request is, as every transport can describe it, and what it gets.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::render::FileRef;

/// How a request arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Https,
    Tftp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Https => "https",
            Transport::Tftp => "tftp",
        }
    }
}

/// A request, as every transport can describe it.
#[derive(Debug, Clone)]
pub struct RequestFacts<'a> {
    /// The path as sent, e.g. `/p/<key>/805ec0aabbcc.cfg` or `805ec0aabbcc.cfg`.
    pub path: &'a str,
    pub peer: IpAddr,
    pub user_agent: Option<&'a str>,
    pub transport: Transport,
    /// The `Authorization` header, if any (HTTP only).
    pub authorization: Option<&'a str>,
    /// The request method and target as sent (Digest signs both).
    pub method: &'a str,
    pub uri: &'a str,
    /// What the credentials proved, once checked: a request resolved again (it waited for
    /// its phone's files) is not checked twice, which Digest's replay protection would refuse.
    pub auth_checked: std::sync::OnceLock<crate::auth::Outcome>,
}

impl<'a> RequestFacts<'a> {
    /// A request that carries nothing but a path (TFTP, tools).
    pub fn bare(path: &'a str, peer: IpAddr, transport: Transport) -> RequestFacts<'a> {
        RequestFacts {
            path,
            peer,
            user_agent: None,
            transport,
            authorization: None,
            method: "GET",
            uri: path,
            auth_checked: Default::default(),
        }
    }
}

/// What the request gets.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// Rendered bytes, in memory.
    Found(FileRef),
    /// An operator's file on disk, to be streamed.
    Disk(DiskFile),
    NotFound,
    /// Credentials needed: HTTP answers with a challenge; TFTP as any miss. Also the answer to
    /// every miss that names no site without credentials while any site has them, so a caller
    /// without valid credentials cannot tell a wrong key, an unknown MAC, a missing file and
    /// wrong credentials apart.
    Unauthorized,
}

/// A static file found under the files directory.
#[derive(Debug, Clone)]
pub struct DiskFile {
    pub path: PathBuf,
    pub len: u64,
    /// Strong entity tag from size and modification time.
    pub etag: String,
}

/// How a transfer that runs in steps (TFTP) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEnd {
    Done,
    /// The client sent an error.
    ClientError(String),
    /// No answer after the last retry.
    Abandoned,
    /// The client's port closed.
    Gone,
    /// Every block was sent but the final acknowledgement never came: the client probably
    /// has the whole file (its last ACK was lost, or it moved on at once).
    Unconfirmed,
    /// The client sent its request again from the same port; a new transfer took over.
    Superseded,
}
