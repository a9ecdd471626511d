//! The vendor-cloud clients a command needs, made when first needed: YMCS (its key) and the RPS
//! management API (its own key, optional). An RPS job goes through the RPS API when its keys
//! are configured — then YMCS need not be configured at all — else through YMCS v2.

use std::path::{Path, PathBuf};

use super::rps_v1::{RpsClient, RpsConfig};
use super::{Client, OpError, RpsApi, YmcsConfig};

pub struct Clouds {
    data_dir: PathBuf,
    ymcs: Option<Client>,
    rps: Option<Option<RpsClient>>,
}

impl Clouds {
    pub fn new(data_dir: &Path) -> Clouds {
        Clouds {
            data_dir: data_dir.to_path_buf(),
            ymcs: None,
            rps: None,
        }
    }

    /// The YMCS client; an error naming every missing setting if YMCS is not configured.
    pub fn ymcs(&mut self) -> Result<&mut Client, OpError> {
        if self.ymcs.is_none() {
            self.ymcs = Some(Client::new(YmcsConfig::load(&self.data_dir)?)?);
        }
        match self.ymcs.as_mut() {
            Some(c) => Ok(c),
            None => Err(OpError::Invalid("YMCS client missing".into())),
        }
    }

    /// The RPS management API client, if its keys are configured.
    pub fn rps_v1(&mut self) -> Result<Option<&mut RpsClient>, OpError> {
        if self.rps.is_none() {
            let cfg = RpsConfig::load(&self.data_dir)?;
            self.rps = Some(cfg.map(RpsClient::new).transpose()?);
        }
        Ok(self.rps.as_mut().and_then(|r| r.as_mut()))
    }

    /// The API RPS jobs go through.
    pub fn rps(&mut self) -> Result<RpsApi<'_>, OpError> {
        if self.rps_v1()?.is_some() {
            return match self.rps.as_mut().and_then(|r| r.as_mut()) {
                Some(r) => Ok(RpsApi::V1(r)),
                None => Err(OpError::Invalid("RPS client missing".into())),
            };
        }
        Ok(RpsApi::Ymcs(self.ymcs()?))
    }
}
