//! Raw settings at their layers, what a phone would get, and what phones upload.

use super::*;
use crate::publish::render_site;

impl Manager {
    /// Resolves a user's layer words to a layer, the change scope and a vendor.
    async fn layer(
        &self,
        conn: &mut Conn,
        l: &LayerInput,
    ) -> Result<(Layer, Scope, Option<String>)> {
        if let Some(v) = &l.vendor
            && Catalog::get().vendor(v).is_none()
        {
            return Err(Error::Invalid(format!(
                "unknown vendor '{v}' (yealink or polycom)"
            )));
        }
        match (&l.site, &l.model, &l.phone) {
            (None, None, Some(mac)) if l.vendor.is_none() => {
                let phone = self.phone_of(conn, parse_mac(mac)?).await?;
                Ok((Layer::Phone { mac: phone.mac }, Scope::Phone(phone.site_id, phone.mac), None))
            }
            (Some(site), None, None) => {
                let site = self.site_named(conn, site).await?;
                Ok((Layer::Site { site_id: site.id }, Scope::Site(site.id), l.vendor.clone()))
            }
            (Some(site), Some(model), None) if l.vendor.is_none() => {
                let site = self.site_named(conn, site).await?;
                Ok((Layer::SiteModel { site_id: site.id, model: model_name(model)? }, Scope::Site(site.id), None))
            }
            (None, Some(model), None) if l.vendor.is_none() => {
                Ok((Layer::Model { model: model_name(model)? }, Scope::All, None))
            }
            _ => Err(Error::Invalid(
                "name one layer: --site NAME [--vendor V], --model MODEL [--site NAME], or --phone MAC".into(),
            )),
        }
    }

    pub async fn setting_set(&self, layer: &LayerInput, key: &str, value: &str) -> Result<bool> {
        check_setting(key, value).map_err(Error::Invalid)?;
        if let Some(v) = Catalog::get().reserved_by(key) {
            return Err(Error::Invalid(format!(
                "'{key}' is set by phoneprov for {} phones (firmware and provisioning server); use `phoneprov firmware assign` to choose firmware",
                v.display
            )));
        }
        if let Some(why) = self.policy.get().denied_in_text(value) {
            return Err(Error::Invalid(format!(
                "the value of '{key}' names a denied firmware image: {why}"
            )));
        }
        let mut tx = self.store.begin().await?;
        let (layer, scope, vendor) = self.layer(&mut tx, layer).await?;
        let s = Setting {
            layer,
            vendor,
            key: key.to_string(),
            value: value.to_string(),
        };
        let changed = store::put_setting(&mut tx, &s).await?;
        if changed {
            store::log_change(&mut tx, scope).await?;
            self.check_render(&mut tx, scope).await?;
        }
        commit(tx).await?;
        tracing::info!(key, layer = ?s.layer, changed, "setting set");
        Ok(changed)
    }

    pub async fn setting_rm(&self, layer: &LayerInput, key: &str) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let (layer, scope, vendor) = self.layer(&mut tx, layer).await?;
        if !store::delete_setting(&mut tx, &layer, vendor.as_deref(), key).await? {
            return Err(Error::NotFound(format!("'{key}' is not set at that layer")));
        }
        store::log_change(&mut tx, scope).await?;
        self.check_render(&mut tx, scope).await?;
        commit(tx).await?;
        tracing::info!(key, layer = ?layer, "setting removed");
        Ok(())
    }

    pub async fn setting_list(&self, layer: &LayerInput) -> Result<Vec<Setting>> {
        let mut conn = self.store.conn().await?;
        let (layer, _, _) = self.layer(&mut conn, layer).await?;
        Ok(store::layer_settings(&mut conn, &layer).await?)
    }

    /// Every file of the phone's own, rendered now from the database: what a phone would get.
    pub async fn render_phone(&self, mac: &str) -> Result<Vec<(String, bytes::Bytes)>> {
        let mac = parse_mac(mac)?;
        let mut conn = self.store.conn().await?;
        let phone = self.phone_of(&mut conn, mac).await?;
        let files = render_site(
            &mut conn,
            &self.renderer.get(),
            &self.policy.get(),
            phone.site_id,
            Some(mac),
        )
        .await?
        .ok_or_else(|| Error::NotFound(format!("phone {} is not enrolled", mac.colon())))?;
        let mut own: Vec<(String, bytes::Bytes)> = files
            .files
            .iter()
            .filter(|(_, f)| f.mac == Some(mac))
            .map(|(n, f)| (n.clone(), f.bytes.clone()))
            .collect();
        // The site files this phone's vendor fetches come after its own.
        let vendor = Catalog::get()
            .model(&phone.model)
            .and_then(|m| Catalog::get().vendor(&m.vendor));
        if let (Some(v), Some(model)) = (vendor, Catalog::get().model(&phone.model)) {
            for spec in v
                .files
                .iter()
                .filter(|f| f.scope != crate::catalog::Scope::Phone)
            {
                let name = spec
                    .name
                    .replace("{code}", model.code.as_deref().unwrap_or_default());
                if let Some(f) = files.files.get(&name) {
                    own.push((name, f.bytes.clone()));
                }
            }
        }
        own.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(own)
    }

    /// Stores a file a phone uploaded (already matched to a phone by the resolver).
    pub async fn store_upload(
        &self,
        site_id: i64,
        mac: Mac,
        name: &str,
        body: &[u8],
    ) -> Result<()> {
        let mut tx = self.store.begin().await?;
        store::put_upload(&mut tx, mac, name, body).await?;
        store::log_change(&mut tx, Scope::Phone(site_id, mac)).await?;
        commit(tx).await?;
        Ok(())
    }
}
