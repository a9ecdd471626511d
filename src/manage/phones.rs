//! Phone and line verbs, and how a phone is shown.

use super::*;

impl Manager {
    pub async fn phone_add(&self, input: PhoneInput) -> Result<PhoneView> {
        let mac = parse_mac(&input.mac)?;
        let model = model_name(&input.model)?;
        let label = input.label.clone().unwrap_or_default();
        check_text("label", &label, 200).map_err(Error::Invalid)?;
        let mut tx = self.store.begin().await?;
        let site = self.site_named(&mut tx, &input.site).await?;
        if let Some(existing) = store::phone(&mut tx, mac).await? {
            let other = store::site_by_id(&mut tx, existing.site_id)
                .await?
                .map(|s| s.name)
                .unwrap_or_default();
            return Err(Error::Conflict(format!(
                "phone {} is already enrolled in site '{other}' as a {}",
                mac.colon(),
                existing.model
            )));
        }
        let phone = Phone {
            mac,
            model,
            site_id: site.id,
            label,
            sn: crate::model::parse_sn(input.sn.as_deref().unwrap_or(""))
                .map_err(Error::Invalid)?,
        };
        store::insert_phone(&mut tx, &phone).await?;
        store::log_change(&mut tx, Scope::Phone(site.id, mac)).await?;
        self.check_render(&mut tx, Scope::Phone(site.id, mac))
            .await?;
        let view = self.view_phone(&mut tx, phone).await?;
        commit(tx).await?;
        tracing::info!(%mac, site = %site.name, "phone added");
        Ok(view)
    }

    async fn view_phone(&self, conn: &mut Conn, phone: Phone) -> Result<PhoneView> {
        let site = store::site_by_id(conn, phone.site_id)
            .await?
            .map(|s| s.name)
            .unwrap_or_default();
        let lines = store::lines(conn, phone.mac)
            .await?
            .into_iter()
            .map(|l| LineView {
                n: l.n,
                user: l.user,
                auth_user: l.auth_user,
                display_name: l.display_name,
                label: l.label,
                domain: l.domain,
                password_set: !l.password.is_empty(),
            })
            .collect();
        let last_seen = store::seen(conn, phone.mac).await?;
        let cat = Catalog::get();
        let vendor = cat
            .model(&phone.model)
            .map(|m| m.vendor.clone())
            .unwrap_or_default();
        let files = cat
            .vendor(&vendor)
            .map(|v| {
                v.files
                    .iter()
                    .filter(|f| f.scope == crate::catalog::Scope::Phone)
                    .map(|f| f.name.replace("{mac}", &phone.mac.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let firmware_denied = last_seen
            .as_ref()
            .and_then(|s| self.running_denied(&phone.model, s.firmware.as_deref()));
        Ok(PhoneView {
            firmware_denied,
            mac_colon: phone.mac.colon(),
            mac: phone.mac,
            model: phone.model,
            vendor,
            site,
            label: phone.label,
            sn: phone.sn,
            lines,
            last_seen,
            files,
        })
    }

    /// Changes a phone: label, serial number, model, site (only with `move_site`).
    pub async fn phone_update(&self, mac: &str, u: PhoneUpdate) -> Result<PhoneView> {
        let mac = parse_mac(mac)?;
        let mut tx = self.store.begin().await?;
        let mut phone = self.phone_of(&mut tx, mac).await?;
        if let Some(l) = &u.label {
            check_text("label", l, 200).map_err(Error::Invalid)?;
            phone.label = l.clone();
        }
        if let Some(sn) = &u.sn {
            phone.sn = crate::model::parse_sn(sn).map_err(Error::Invalid)?;
        }
        if let Some(m) = &u.model {
            let name = model_name(m)?;
            let accounts = Catalog::get().model(&name).map(|m| m.accounts).unwrap_or(0);
            if let Some(l) = store::lines(&mut tx, mac)
                .await?
                .iter()
                .find(|l| l.n > accounts)
            {
                return Err(Error::Invalid(format!(
                    "{} has line {}, but a {name} has lines 1 to {accounts}: remove it first (line rm {} {})",
                    mac.colon(),
                    l.n,
                    mac,
                    l.n
                )));
            }
            phone.model = name;
        }
        let old_site = phone.site_id;
        if let Some(s) = &u.site {
            let site = self.site_named(&mut tx, s).await?;
            if site.id != phone.site_id && !u.move_site {
                let from = store::site_by_id(&mut tx, phone.site_id)
                    .await?
                    .map(|s| s.name)
                    .unwrap_or_default();
                return Err(Error::Invalid(format!(
                    "{} is enrolled in site '{from}'; moving it to '{}' needs --move (API: \"move_site\": true)",
                    mac.colon(),
                    site.name
                )));
            }
            phone.site_id = site.id;
        }
        store::update_phone(&mut tx, &phone).await?;
        if old_site != phone.site_id {
            store::log_change(&mut tx, Scope::Site(old_site)).await?;
        }
        store::log_change(&mut tx, Scope::Phone(phone.site_id, mac)).await?;
        self.check_render(&mut tx, Scope::Phone(phone.site_id, mac))
            .await?;
        let view = self.view_phone(&mut tx, phone).await?;
        commit(tx).await?;
        tracing::info!(%mac, "phone updated");
        Ok(view)
    }

    pub async fn phone_list(&self, site: Option<&str>) -> Result<Vec<PhoneView>> {
        let mut conn = self.store.conn().await?;
        let site_id = match site {
            Some(name) => Some(self.site_named(&mut conn, name).await?.id),
            None => None,
        };
        let mut out = Vec::new();
        for p in store::list_phones(&mut conn, site_id).await? {
            out.push(self.view_phone(&mut conn, p).await?);
        }
        Ok(out)
    }

    /// Phones matching what a tech typed: a MAC in any spelling (whole, or a part of 4 or more
    /// hex digits), or a label or site name containing it; the first `limit` of them as views,
    /// and how many matched in all. One query for the phones, then a view only for those shown.
    pub async fn phone_search(
        &self,
        q: &str,
        site: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<PhoneView>, usize)> {
        let mut conn = self.store.conn().await?;
        let site_id = match site {
            Some(name) => Some(self.site_named(&mut conn, name).await?.id),
            None => None,
        };
        let names: std::collections::HashMap<i64, String> = store::list_sites(&mut conn)
            .await?
            .into_iter()
            .map(|s| (s.id, s.name.to_lowercase()))
            .collect();
        let q = q.trim();
        let hex: String = q
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let mac_like = hex.len() >= 4
            && q.chars()
                .all(|c| c.is_ascii_hexdigit() || ":-. ".contains(c));
        let ql = q.to_lowercase();
        let hit = |p: &Phone| {
            q.is_empty()
                || (mac_like && p.mac.to_string().contains(&hex))
                || p.label.to_lowercase().contains(&ql)
                || names.get(&p.site_id).is_some_and(|n| n.contains(&ql))
        };
        let hits: Vec<Phone> = store::list_phones(&mut conn, site_id)
            .await?
            .into_iter()
            .filter(|p| hit(p))
            .collect();
        let total = hits.len();
        let mut out = Vec::new();
        for p in hits.into_iter().take(limit) {
            out.push(self.view_phone(&mut conn, p).await?);
        }
        Ok((out, total))
    }

    pub async fn phone_show(&self, mac: &str) -> Result<PhoneView> {
        let mac = parse_mac(mac)?;
        let mut conn = self.store.conn().await?;
        let phone = self.phone_of(&mut conn, mac).await?;
        self.view_phone(&mut conn, phone).await
    }

    pub async fn phone_rm(&self, mac: &str) -> Result<()> {
        let mac = parse_mac(mac)?;
        let mut tx = self.store.begin().await?;
        let phone = self.phone_of(&mut tx, mac).await?;
        store::delete_phone(&mut tx, mac).await?;
        store::log_change(&mut tx, Scope::Phone(phone.site_id, mac)).await?;
        commit(tx).await?;
        tracing::info!(%mac, "phone removed");
        Ok(())
    }

    pub async fn line_set(&self, mac: &str, n: u32, input: LineInput) -> Result<LineView> {
        let mac = parse_mac(mac)?;
        let mut tx = self.store.begin().await?;
        let phone = self.phone_of(&mut tx, mac).await?;
        let accounts = Catalog::get()
            .model(&phone.model)
            .map(|m| m.accounts)
            .unwrap_or(0);
        if n == 0 || n > accounts as u32 {
            return Err(Error::Invalid(format!(
                "line {n} is out of range: a {} has lines 1 to {accounts}",
                phone.model
            )));
        }
        let opt = |s: &Option<String>| s.clone().filter(|v| !v.is_empty());
        let line = Line {
            n: n as u8,
            user: input.user.trim().to_string(),
            auth_user: opt(&input.auth_user),
            password: input.password.clone(),
            display_name: opt(&input.display_name),
            label: opt(&input.label),
            domain: opt(&input.domain).map(|d| d.trim().to_ascii_lowercase()),
        };
        if let Some(d) = &line.domain {
            super::check_domain("line domain", d).map_err(Error::Invalid)?;
        }
        if line.user.is_empty() {
            return Err(Error::Invalid("line user must not be empty".into()));
        }
        if line.password.is_empty() {
            return Err(Error::Invalid("line password must not be empty".into()));
        }
        for (field, v) in [
            ("user", Some(&line.user)),
            ("auth user", line.auth_user.as_ref()),
            ("password", Some(&line.password)),
            ("display name", line.display_name.as_ref()),
            ("label", line.label.as_ref()),
        ] {
            if let Some(v) = v {
                crate::model::check_line_value(field, v).map_err(Error::Invalid)?;
            }
        }
        store::upsert_line(&mut tx, mac, &line).await?;
        store::log_change(&mut tx, Scope::Phone(phone.site_id, mac)).await?;
        self.check_render(&mut tx, Scope::Phone(phone.site_id, mac))
            .await?;
        commit(tx).await?;
        tracing::info!(%mac, line = n, user = %line.user, "line set");
        Ok(LineView {
            n: line.n,
            user: line.user,
            auth_user: line.auth_user,
            display_name: line.display_name,
            label: line.label,
            domain: line.domain,
            password_set: true,
        })
    }

    pub async fn line_rm(&self, mac: &str, n: u32) -> Result<()> {
        let mac = parse_mac(mac)?;
        let mut tx = self.store.begin().await?;
        let phone = self.phone_of(&mut tx, mac).await?;
        let n8 = u8::try_from(n)
            .map_err(|_| Error::NotFound(format!("phone {} has no line {n}", mac.colon())))?;
        if !store::delete_line(&mut tx, mac, n8).await? {
            return Err(Error::NotFound(format!(
                "phone {} has no line {n}",
                mac.colon()
            )));
        }
        store::log_change(&mut tx, Scope::Phone(phone.site_id, mac)).await?;
        commit(tx).await?;
        tracing::info!(%mac, line = n, "line removed");
        Ok(())
    }
}
