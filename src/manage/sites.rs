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
        let sip = new_sip(
            &Default::default(),
            transport,
            input.outbound_proxy.as_deref(),
            input.outbound_proxy_2.as_deref(),
            input.recheck.as_deref(),
        )?;
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
        if let Some(y) = input
            .ymcs_site
            .as_deref()
            .map(str::trim)
            .filter(|y| !y.is_empty())
        {
            check_text("YMCS site", y, 128).map_err(Error::Invalid)?;
            store::set_site_ymcs(&mut tx, site.id, Some(y)).await?;
        }
        store::set_site_sip(&mut tx, site.id, &sip).await?;
        let site = store::site_by_id(&mut tx, site.id).await?.unwrap_or(site);
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
                let memory = crate::store::firmware::refused(&mut tx).await?;
                let v = crate::publish::stored_verdict(&self.policy.get(), &memory, &image);
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
        let sip = new_sip(
            &site.sip,
            transport,
            u.outbound_proxy.as_deref(),
            u.outbound_proxy_2.as_deref(),
            u.recheck.as_deref(),
        )?;
        if sip != site.sip {
            store::set_site_sip(&mut tx, site.id, &sip).await?;
        }
        let access = self.new_access(&site, &u)?;
        if access_changed(&site.access, &access) {
            store::set_site_access(&mut tx, site.id, &access).await?;
        }
        if let Some(y) = u.ymcs_site.as_deref().map(str::trim) {
            check_text("YMCS site", y, 128).map_err(Error::Invalid)?;
            store::set_site_ymcs(&mut tx, site.id, Some(y).filter(|y| !y.is_empty())).await?;
        }
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
        tracing::info!(site = %site.name, rotated = u.rotate_key, login = site.access.auth.is_some(),
            generation = site.access.auth_generation, "site updated");
        let mut conn = self.store.conn().await?;
        self.view_site_counted(&mut conn, site, phones).await
    }

    /// The site's access rules after `u`: a new login moves the current one to "previous"
    /// for the rotation window.
    fn new_access(&self, site: &Site, u: &SiteUpdate) -> Result<SiteAccess> {
        let mut a = site.access.clone();
        let now = crate::store::now_ms();
        let window_ms = match &u.rotation_window {
            Some(w) => crate::config::parse_duration(w)
                .map_err(|e| Error::Invalid(format!("rotation window: {e}")))?
                .as_millis() as i64,
            None => 7 * 86_400_000,
        };
        if u.no_auth && (u.auth_user.is_some() || u.auth_password.is_some()) {
            return Err(Error::Invalid(
                "--no-auth cannot be combined with --auth-user/--auth-password".into(),
            ));
        }
        if u.no_auth {
            if a.auth.is_some() {
                a.auth = None;
                a.previous_auth = None;
                a.previous_until = None;
                a.auth_generation += 1;
            }
        } else if u.auth_user.is_some() || u.auth_password.is_some() {
            let user = u
                .auth_user
                .clone()
                .or_else(|| a.auth.as_ref().map(|c| c.user.clone()))
                .ok_or_else(|| Error::Invalid("a new login needs --auth-user as well".into()))?;
            let password = u.auth_password.clone().ok_or_else(|| {
                Error::Invalid("--auth-user needs --auth-password (the login's password)".into())
            })?;
            check_login(&user, &password)?;
            let new = Credential { user, password };
            if a.auth.as_ref() != Some(&new) {
                a.previous_auth = a.auth.take().filter(|_| window_ms > 0);
                a.previous_until = a.previous_auth.as_ref().map(|_| now + window_ms);
                a.auth = Some(new);
                a.auth_generation += 1;
            }
        } else if u.rotation_window.is_some() {
            // Shorten or lengthen the window of a rotation under way (0 ends it now).
            if a.previous_auth.is_some() {
                a.previous_until = Some(now + window_ms);
                if window_ms == 0 {
                    a.previous_auth = None;
                    a.previous_until = None;
                }
            }
        }
        if let Some(nets) = &u.allow_nets {
            a.allow_nets = nets
                .iter()
                .map(|n| n.parse().map_err(Error::Invalid))
                .collect::<Result<_>>()?;
        }
        if let Some(r) = u.require_https {
            a.require_https = r;
        }
        if let Some(t) = &u.tftp {
            a.tftp_sensitive = t.parse().map_err(Error::Invalid)?;
        }
        if a.require_https && self.renderer.get().urls().https.is_none() {
            return Err(Error::Invalid(
                "--require-https needs the public HTTPS URL phones reach this server at: set public_https_url in phoneprov.toml (or --public-https-url)".into(),
            ));
        }
        Ok(a)
    }

    /// A site view with how many phones already use its current login.
    async fn view_site_counted(
        &self,
        conn: &mut Conn,
        site: Site,
        phones: i64,
    ) -> Result<SiteView> {
        let on = match &site.access.auth {
            Some(_) => {
                Some(store::phones_on_generation(conn, site.id, site.access.auth_generation).await?)
            }
            None => None,
        };
        let mut v = self.view_site(site, phones);
        v.phones_on_current_login = on;
        Ok(v)
    }

    /// Phones for a YMCS operation: those of a site, or the named MACs (each must be ours),
    /// grouped by site.
    /// Phones grouped with their sites (for cloud jobs on phones not yet stored: a plan).
    pub async fn targets_of(&self, phones: Vec<Phone>) -> Result<Vec<(Site, Vec<Phone>)>> {
        let mut conn = self.store.conn().await?;
        let mut by_site: Vec<(Site, Vec<Phone>)> = Vec::new();
        for p in phones {
            match by_site.iter_mut().find(|(s, _)| s.id == p.site_id) {
                Some((_, v)) => v.push(p),
                None => {
                    let s = store::site_by_id(&mut conn, p.site_id)
                        .await?
                        .ok_or_else(|| Error::NotFound(format!("no site with id {}", p.site_id)))?;
                    by_site.push((s, vec![p]));
                }
            }
        }
        Ok(by_site)
    }

    pub async fn phones_for(
        &self,
        site: Option<&str>,
        macs: &[String],
    ) -> Result<Vec<(Site, Vec<Phone>)>> {
        let mut conn = self.store.conn().await?;
        match (site, macs.is_empty()) {
            (Some(_), false) | (None, true) => {
                Err(Error::Invalid("name either --site or MACs".into()))
            }
            (Some(name), true) => {
                let site = self.site_named(&mut conn, name).await?;
                let phones = store::list_phones(&mut conn, Some(site.id)).await?;
                Ok(vec![(site, phones)])
            }
            (None, false) => {
                let mut by_site: Vec<(Site, Vec<Phone>)> = Vec::new();
                for m in macs {
                    let mac: Mac = m.parse().map_err(|e| Error::Invalid(format!("{m}: {e}")))?;
                    let p = store::phone(&mut conn, mac)
                        .await?
                        .ok_or_else(|| Error::NotFound(format!("no phone {mac}")))?;
                    match by_site.iter_mut().find(|(s, _)| s.id == p.site_id) {
                        Some((_, v)) => {
                            if !v.iter().any(|q| q.mac == p.mac) {
                                v.push(p)
                            }
                        }
                        None => {
                            let s = store::site_by_id(&mut conn, p.site_id)
                                .await?
                                .ok_or_else(|| Error::NotFound(format!("site of {mac}")))?;
                            by_site.push((s, vec![p]));
                        }
                    }
                }
                Ok(by_site)
            }
        }
    }

    /// Where a site's phones provision from (HTTPS when the site requires it).
    pub fn provisioning_url(&self, site: &Site) -> Result<String> {
        self.renderer
            .get()
            .urls()
            .site_url(site)
            .map_err(Error::Invalid)
    }

    /// Audited fetches, newest first.
    pub async fn audit(
        &self,
        site: Option<&str>,
        mac: Option<&str>,
        peer: Option<String>,
        result: Option<String>,
        since: Option<i64>,
        limit: i64,
    ) -> Result<Vec<store::AuditRow>> {
        let mut conn = self.store.conn().await?;
        let site_id = match site {
            Some(n) => Some(self.site_named(&mut conn, n).await?.id),
            None => None,
        };
        let mac = mac
            .map(|m| m.parse::<Mac>().map_err(|e| Error::Invalid(e.to_string())))
            .transpose()?;
        let result = result
            .map(|r| {
                crate::audit::FetchResult::parse(&r)
                    .map(|r| r.as_str().to_string())
                    .map_err(Error::Invalid)
            })
            .transpose()?;
        if let Some(p) = &peer
            && p.parse::<std::net::IpAddr>().is_err()
        {
            return Err(Error::Invalid(format!("peer '{p}' is not an IP address")));
        }
        let f = store::AuditFilter {
            site_id,
            mac: mac.map(|m| m.to_string()),
            peer,
            result,
            since,
            limit: Some(limit),
        };
        Ok(store::query_audit(&mut conn, &f).await?)
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

    /// Every site's id and name, by name (one query: for choosing a site).
    pub async fn site_names(&self) -> Result<Vec<(i64, String)>> {
        let mut conn = self.store.conn().await?;
        Ok(store::list_sites(&mut conn)
            .await?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect())
    }

    pub async fn site_show(&self, name: &str) -> Result<SiteView> {
        let mut conn = self.store.conn().await?;
        let site = self.site_named(&mut conn, name).await?;
        let n = store::count_phones(&mut conn, site.id).await?;
        self.view_site_counted(&mut conn, site, n).await
    }

    /// Removes a site. A site with phones is kept unless `force`, which removes its phones too.
    pub async fn site_rm(&self, name: &str, force: bool) -> Result<u64> {
        let mut tx = self.store.begin().await?;
        let site = self.site_named(&mut tx, name).await?;
        let n = store::count_phones(&mut tx, site.id).await?;
        if n > 0 && !force {
            return Err(Error::Conflict(format!(
                "site '{name}' still has {n} phone(s); remove them first, or force it to remove them with the site (CLI --force, API ?force=true)"
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

fn access_changed(a: &SiteAccess, b: &SiteAccess) -> bool {
    a.auth != b.auth
        || a.previous_auth != b.previous_auth
        || a.previous_until != b.previous_until
        || a.auth_generation != b.auth_generation
        || a.allow_nets != b.allow_nets
        || a.require_https != b.require_https
        || a.tftp_sensitive != b.tftp_sensitive
}

/// A login phones can present in Basic (no ':' in the user) and in their config files.
fn check_login(user: &str, password: &str) -> Result<()> {
    if user.is_empty() || user.len() > 64 || user.contains([':', '"', '\\']) {
        return Err(Error::Invalid(
            "auth user must be 1 to 64 characters without ':', '\"' or '\\'".into(),
        ));
    }
    crate::model::check_text("auth user", user, 64).map_err(Error::Invalid)?;
    if password.chars().count() < 8 || password.len() > 128 {
        return Err(Error::Invalid(
            "auth password must be 8 to 128 characters (it guards SIP passwords)".into(),
        ));
    }
    crate::model::check_text("auth password", password, 128).map_err(Error::Invalid)
}
