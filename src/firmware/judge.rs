//! The one judgement of an image's bytes, used by every entry point: store, check, upload,
//! recovery (CLI and per site), assignment, rendering, serving a stored image or a static
//! file, policy reload.
//!
//! An image is known first by its bytes ([`Content`]): bytes that are a known build
//! ([`super::known`]) are that build, whatever their name says; bytes refused before are judged
//! again as what they were refused as; then the policy judges the identity and the digests.
//! The file name, `--version` and `--models` are claims: they name what the bytes are only
//! when nothing about the bytes says otherwise, and a claim that contradicts the bytes is a
//! refusal naming both.

use std::collections::HashMap;

use super::content::Content;
use super::known::{KnownBuild, build_of, builds_of};
use super::policy::{Facts, Policy, Verdict};
use super::{Version, fitting_models, identify};
use crate::catalog::Catalog;
use crate::model::RefusedImage;

/// Refused digests (sha256) with what the bytes claimed to be when refused.
pub type Memory = HashMap<String, RefusedImage>;

/// What a user or a stored record says an image is.
#[derive(Debug, Clone, Copy)]
pub struct Claims<'a> {
    /// The name phones will fetch it by.
    pub file_name: &'a str,
    /// A declared version (`--version`), which overrides the one in the name.
    pub version: Option<&'a str>,
    /// Declared models (`--models`), which override the ones in the name.
    pub models: &'a [String],
}

/// What an image is and what the policy says of it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Judgement {
    pub file_name: String,
    pub vendor: String,
    pub version: Version,
    /// The catalogue models it fits.
    pub models: Vec<String>,
    pub content: Content,
    /// The published build these bytes are, when known.
    pub known: Option<KnownBuild>,
    pub verdict: Verdict,
}

/// Nothing says what the image is, or the claims cannot be true of any image.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Unidentified(pub String);

fn display(vendor: &str) -> String {
    Catalog::get()
        .vendor(vendor)
        .map(|v| v.display.clone())
        .unwrap_or_else(|| vendor.to_string())
}

/// Judges bytes under claims. `Err` when the image cannot be identified at all; otherwise the
/// verdict says whether it may reach a phone, and why not.
pub fn judge(
    policy: &Policy,
    memory: &Memory,
    content: &Content,
    claims: &Claims<'_>,
) -> Result<Judgement, Unidentified> {
    let cat = Catalog::get();
    let name = claims.file_name;
    let by_name = identify(name);
    let by_bytes = build_of(&policy.known, content);
    let mut listed = Vec::new();
    for m in claims.models {
        listed.push(
            cat.model(m)
                .map(|m| m.name.clone())
                .ok_or_else(|| Unidentified(cat.unknown_model_message(m)))?,
        );
    }
    let claimed_vendor = by_name.as_ref().map(|i| i.vendor.clone()).or_else(|| {
        listed
            .first()
            .and_then(|m| cat.model(m))
            .map(|m| m.vendor.clone())
    });
    let remembered = memory.get(&content.sha256);
    let vendor = match (
        by_bytes,
        &claimed_vendor,
        remembered.and_then(|r| r.vendor.clone()),
    ) {
        (Some(k), _, _) => k.vendor.clone(),
        (None, Some(v), _) => v.clone(),
        (None, None, Some(v)) => v,
        (None, None, None) => {
            return Err(Unidentified(format!(
                "cannot tell what '{name}' is from its name: give --version and --models"
            )));
        }
    };
    if let Some(bad) = listed
        .iter()
        .find(|m| cat.model(m).is_some_and(|x| x.vendor != vendor))
    {
        return Err(Unidentified(format!("{bad} is not a {vendor} model")));
    }
    let (claimed, claimed_by) = match (
        claims.version,
        by_name.as_ref().and_then(|i| i.version.clone()),
    ) {
        (Some(v), _) => (
            Some(Version::parse(v).ok_or_else(|| Unidentified(format!("'{v}' is not a version")))?),
            "--version",
        ),
        (None, Some(v)) => (Some(v), "its name"),
        (None, None) => (None, ""),
    };
    let version = match (
        by_bytes,
        &claimed,
        remembered.and_then(|r| r.version.as_deref().and_then(Version::parse)),
    ) {
        (Some(k), _, _) => k.version.clone(),
        (None, Some(v), _) => v.clone(),
        (None, None, Some(v)) => v,
        (None, None, None) => {
            return Err(Unidentified(format!(
                "the version of '{name}' cannot be read from its name: give --version"
            )));
        }
    };
    if cat.firmware_by_family(&vendor)
        && let Some(m) = listed
            .iter()
            .filter_map(|m| cat.model(m))
            .find(|m| m.family != Some(version.family()))
    {
        return Err(Unidentified(format!(
            "{name} (version {version}, family {}) does not fit a {} (family {})",
            version.family(),
            m.name,
            m.family
                .map(|f| f.to_string())
                .unwrap_or_else(|| "?".into())
        )));
    }
    if listed.is_empty() {
        // Known bytes fit what the build fits, whatever models their name lists.
        listed = match by_bytes {
            Some(k) => k.models.clone(),
            None => by_name.map(|i| i.models).unwrap_or_default(),
        };
    }
    let models = fitting_models(&vendor, &version, &listed);
    if models.is_empty() {
        return Err(Unidentified(format!(
            "{name} (version {version}) fits no known {vendor} model"
        )));
    }

    let mut verdict = Verdict::default();
    let who = display(&vendor);
    // The bytes are a known build: every claim must agree with it.
    if let Some(k) = by_bytes {
        if let Some(c) = claimed.as_ref().filter(|c| **c != k.version) {
            verdict.refusals.push(format!(
                "these bytes are {who}'s {} ({}; {}; {}), not {c} as {claimed_by} says",
                k.version,
                k.describe(),
                k.source,
                k.at
            ));
        }
        if let Some(cv) = claimed_vendor.as_ref().filter(|cv| **cv != k.vendor) {
            verdict.refusals.push(format!(
                "these bytes are {who}'s {}, not a {} image",
                k.version,
                display(cv)
            ));
        }
    } else if let Some(c) = &claimed {
        // They claim a known version they are not.
        let builds = builds_of(&policy.known, &vendor, c);
        if !builds.is_empty() {
            verdict.refusals.push(format!(
                "these bytes are not {who}'s {c} ({claimed_by} says they are): that build is {}; these are {} bytes, sha1 {}, sha256 {}",
                builds
                    .iter()
                    .map(|k| format!("{} ({}; {})", k.describe(), k.source, k.at))
                    .collect::<Vec<_>>()
                    .join(" or "),
                content.size,
                content.sha1,
                content.sha256
            ));
        }
    }
    // Refused before: judged again as what they were refused as, under the policy in force now.
    if let Some(r) = remembered {
        // Judged as the same identity by the policy below, unless that identity came from the
        // memory alone: then say where it came from.
        let from_memory = by_bytes.is_none() && claimed.is_none();
        let same = !from_memory
            && r.vendor.as_deref() == Some(vendor.as_str())
            && r.version.as_deref() == Some(version.as_str());
        let then = remembered_verdict(policy, r, &content.sha256, Some(&content.sha1));
        match then {
            Some(v) if v.allowed() || same => {}
            Some(v) => {
                verdict.refusals.push(format!(
                    "these bytes were refused as {} (version {}): {}; a renamed or re-declared copy is refused too",
                    r.file_name,
                    r.version.as_deref().unwrap_or("?"),
                    v.refusals.join("; ")
                ));
                verdict.denied = true;
            }
            None => {
                verdict.refusals.push(format!(
                    "these bytes were refused before as {} ({}); a renamed copy is refused too",
                    r.file_name, r.reason
                ));
                verdict.denied = true;
            }
        }
    }
    let v = policy.check(&Facts {
        vendor: vendor.clone(),
        version: Some(version.clone()),
        models: models.clone(),
        sha256: Some(content.sha256.clone()),
        sha1: Some(content.sha1.clone()),
    });
    verdict.refusals.extend(v.refusals);
    verdict.denied |= v.denied;
    Ok(Judgement {
        file_name: name.to_string(),
        vendor,
        version,
        models,
        content: content.clone(),
        known: by_bytes.cloned(),
        verdict,
    })
}

/// What the policy in force says of remembered bytes judged as what they were refused as;
/// `None` for a record older than kept identities (refused as it was).
pub fn remembered_verdict(
    policy: &Policy,
    r: &RefusedImage,
    sha256: &str,
    sha1: Option<&str>,
) -> Option<Verdict> {
    let (vendor, version) = (
        r.vendor.as_ref()?,
        r.version.as_deref().and_then(Version::parse)?,
    );
    Some(policy.check(&Facts {
        vendor: vendor.clone(),
        version: Some(version),
        models: r.models.clone(),
        sha256: Some(sha256.to_string()),
        sha1: sha1.map(str::to_string),
    }))
}

/// Judges a stored image again (after a policy, catalogue or memory change) from what was
/// recorded of its bytes and its claims. An image that no longer identifies is refused.
pub fn judge_stored(
    policy: &Policy,
    memory: &Memory,
    content: &Content,
    file_name: &str,
    version: &str,
    models: &[String],
) -> Verdict {
    let claims = Claims {
        file_name,
        version: Some(version),
        models,
    };
    match judge(policy, memory, content, &claims) {
        Ok(j) => j.verdict,
        Err(e) => Verdict {
            refusals: vec![format!("{file_name} can no longer be identified: {e}")],
            denied: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(seed: u8) -> Content {
        Content::of_bytes(&[seed; 1000])
    }

    fn claims<'a>(name: &'a str, version: Option<&'a str>, models: &'a [String]) -> Claims<'a> {
        Claims {
            file_name: name,
            version,
            models,
        }
    }

    #[test]
    fn claims_identify_unknown_bytes() {
        let p = Policy::shipped();
        let j = judge(
            &p,
            &Memory::new(),
            &content(1),
            &claims("T54W(T57W,T53W,T53)-96.86.0.50.rom", None, &[]),
        )
        .unwrap();
        assert_eq!(j.version.as_str(), "96.86.0.50");
        assert!(j.verdict.allowed() && j.known.is_none());
        let j = judge(
            &p,
            &Memory::new(),
            &content(1),
            &claims("T54W-96.86.0.20.rom", None, &[]),
        )
        .unwrap();
        assert!(j.verdict.denied, "{:?}", j.verdict);
        let e = judge(&p, &Memory::new(), &content(1), &claims("x.bin", None, &[])).unwrap_err();
        assert!(e.0.contains("give --version and --models"), "{e}");
    }

    #[test]
    fn bytes_that_claim_a_known_version_must_be_it() {
        let p = Policy::shipped();
        for c in [
            claims(
                "T54W(T57W,T53W,T53,T53C,T54,T57)-96.86.0.45(20211130).rom",
                None,
                &[],
            ),
            claims("renamed.rom", Some("96.86.0.45"), &["T54W".to_string()]),
        ] {
            let j = judge(&p, &Memory::new(), &content(2), &c).unwrap();
            let r = j.verdict.refusals.join("; ");
            assert!(
                r.contains("these bytes are not Yealink's 96.86.0.45")
                    && r.contains("0975d447c78795c58d9bd2c2ed728f4f29415de8")
                    && r.contains(&content(2).sha1),
                "both digests named: {r}"
            );
        }
    }

    #[test]
    fn known_bytes_are_what_they_are_whatever_their_name() {
        let mut p = Policy::shipped();
        let bad = content(3);
        // A catalogue entry for test bytes, as an operator would add one.
        p.known.push(KnownBuild {
            vendor: "yealink".into(),
            version: Version::parse("96.86.0.20").unwrap(),
            size: bad.size,
            sha1: Some(bad.sha1.clone()),
            sha256: None,
            models: vec![],
            file_name: None,
            source: "test".into(),
            at: "test:1".into(),
        });
        for c in [
            claims("renamed-good.rom", Some("96.86.0.45"), &[]),
            claims("T46U-108.86.0.90.rom", None, &[]),
            claims("anything.rom", None, &[]),
            claims("sip.ld", Some("6.4.3.5156"), &[]),
        ] {
            let j = judge(&p, &Memory::new(), &bad, &c).unwrap();
            assert_eq!(j.version.as_str(), "96.86.0.20", "{c:?}");
            assert!(
                !j.verdict.allowed() && j.verdict.denied,
                "{c:?}: {:?}",
                j.verdict
            );
        }
    }

    #[test]
    fn remembered_bytes_are_judged_as_what_they_were_refused_as() {
        let p = Policy::shipped();
        let bad = content(4);
        let mut mem = Memory::new();
        mem.insert(
            bad.sha256.clone(),
            RefusedImage {
                file_name: "T54W-96.86.0.20.rom".into(),
                vendor: Some("yealink".into()),
                version: Some("96.86.0.20".into()),
                models: vec!["T54W".into()],
                reason: "denied".into(),
            },
        );
        let j = judge(
            &p,
            &mem,
            &bad,
            &claims("renamed-good.rom", Some("96.86.0.45"), &[]),
        )
        .unwrap();
        assert!(j.verdict.denied, "{:?}", j.verdict);
        assert!(
            j.verdict
                .refusals
                .iter()
                .any(|r| r.contains("refused as T54W-96.86.0.20.rom")),
            "{:?}",
            j.verdict
        );
        // A lifted rule lifts the memory too: the operator allowed the version again.
        let lifted = Policy {
            rules: vec![],
            known: vec![],
        };
        let j = judge(
            &lifted,
            &mem,
            &bad,
            &claims("renamed-good.rom", Some("96.86.0.45"), &[]),
        )
        .unwrap();
        assert!(j.verdict.allowed(), "{:?}", j.verdict);
    }
}
