//! Site verbs: add, update (including key rotation), list, show, remove.

use super::*;

impl Manager {
    pub async fn site_add(&self, input: SiteInput) -> Result<SiteView> {
        check_site_name(&input.name)?;
        let transport: Transport = input
            .transport
            .as_deref()
            .unwrap_or("udp")
            .parse()
            .map_err(Error::Invalid)?;
        let (sip_server, sip_port) = parse_server(&input.sip_server, transport)?;
        if let Some(tz) = &input.time_zone {
            parse_time_zone(tz).map_err(Error::Invalid)?;
        }
        check_ntp(&input.ntp)?;
        let fields = SiteFields {
            name: input.name.clone(),
            sip_server,
            sip_port,
            transport,
            time_zone: input.time_zone.clone(),
            ntp: input.ntp.clone(),
            allow_keyless: input.allow_keyless,
            recovery_sha256: None,
        };
        let mut tx = self.store.begin().await?;
        if store::site_by_name(&mut tx, &input.name).await?.is_some() {
            return Err(Error::Conflict(format!(
                "a site named '{}' already exists",
                input.name
            )));
        }
        let site = store::insert_site(&mut tx, &fields, &new_site_key()?).await?;
        store::log_change(&mut tx, Scope::Site(site.id)).await?;
        self.check_render(&mut tx, Scope::Site(site.id)).await?;
        commit(tx).await?;
        tracing::info!(site = %site.name, "site added");
        Ok(self.view_site(site, 0))
    }

    pub async fn site_update(&self, name: &str, u: SiteUpdate) -> Result<SiteView> {
        let mut tx = self.store.begin().await?;
        let site = self.site_named(&mut tx, name).await?;
        let transport: Transport = match &u.transport {
            Some(t) => t.parse().map_err(Error::Invalid)?,
            None => site.transport,
        };
        let (sip_server, sip_port) = match &u.sip_server {
            Some(s) => parse_server(s, transport)?,
            None if u.transport.is_some() && site.sip_port == site.transport.default_port() => {
                (site.sip_server.clone(), transport.default_port())
            }
            None => (site.sip_server.clone(), site.sip_port),
        };
        let time_zone = match &u.time_zone {
            Some(tz) if tz.is_empty() => None,
            Some(tz) => {
                parse_time_zone(tz).map_err(Error::Invalid)?;
                Some(tz.clone())
            }
            None => site.time_zone.clone(),
        };
        if let Some(ntp) = &u.ntp {
            check_ntp(ntp)?;
        }
        let recovery_sha256 = match u.recovery.as_deref().map(str::trim) {
            None => site.recovery_sha256.clone(),
            Some("" | "off") => None,
            Some(what) => {
                let image = self.image_named(&mut tx, what).await?;
                let v = self.policy.get().check(&crate::rollout::facts_of(&image));
                if !v.allowed() {
                    return Err(Error::Invalid(format!(
                        "{} refused: {}",
                        image.file_name,
                        v.refusals.join("; ")
                    )));
                }
                Some(image.sha256)
            }
        };
        let fields = SiteFields {
            name: site.name.clone(),
            sip_server,
            sip_port,
            transport,
            time_zone,
            ntp: u.ntp.clone().unwrap_or(site.ntp.clone()),
            allow_keyless: u.allow_keyless.unwrap_or(site.allow_keyless),
            recovery_sha256,
        };
        store::update_site(&mut tx, site.id, &fields).await?;
        if u.rotate_key {
            store::set_site_key(&mut tx, site.id, &new_site_key()?).await?;
        }
        store::log_change(&mut tx, Scope::Site(site.id)).await?;
        self.check_render(&mut tx, Scope::Site(site.id)).await?;
        let site = store::site_by_id(&mut tx, site.id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no site named '{name}'")))?;
        let phones = store::count_phones(&mut tx, site.id).await?;
        commit(tx).await?;
        tracing::info!(site = %site.name, rotated = u.rotate_key, "site updated");
        Ok(self.view_site(site, phones))
    }

    pub async fn site_list(&self) -> Result<Vec<SiteView>> {
        let mut conn = self.store.conn().await?;
        let mut out = Vec::new();
        for site in store::list_sites(&mut conn).await? {
            let n = store::count_phones(&mut conn, site.id).await?;
            out.push(self.view_site(site, n));
        }
        Ok(out)
    }

    pub async fn site_show(&self, name: &str) -> Result<SiteView> {
        let mut conn = self.store.conn().await?;
        let site = self.site_named(&mut conn, name).await?;
        let n = store::count_phones(&mut conn, site.id).await?;
        Ok(self.view_site(site, n))
    }

    /// Removes a site. A site with phones is kept unless `force`, which removes its phones too.
    pub async fn site_rm(&self, name: &str, force: bool) -> Result<u64> {
        let mut tx = self.store.begin().await?;
        let site = self.site_named(&mut tx, name).await?;
        let n = store::count_phones(&mut tx, site.id).await?;
        if n > 0 && !force {
            return Err(Error::Conflict(format!(
                "site '{name}' still has {n} phone(s); remove them first, or pass --force to remove them with the site"
            )));
        }
        let removed = store::delete_site_phones(&mut tx, site.id).await?;
        store::delete_site(&mut tx, site.id).await?;
        store::log_change(&mut tx, Scope::Site(site.id)).await?;
        commit(tx).await?;
        tracing::info!(site = %name, phones = removed, "site removed");
        Ok(removed)
    }
}
