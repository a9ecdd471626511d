//! phoneprov: zero-touch provisioning for Yealink and Polycom desk phones.
//!
//! # Layout
//!
//! A phone's request travels: transport (`serve::http`) → [`resolve`] (path, peer and
//! User-Agent to bytes) → [`render::ready`] (files rendered in advance: sites' shared files in
//! memory, phones' files in [`render::stored`] packs on disk behind the [`render::cache`]).
//! Data changes travel: CLI or admin API → [`manage`] (validate, change, trial-render, commit)
//! → [`store`] (SQLite or PostgreSQL, with a change log) → [`publish`] (re-render what changed, a page of
//! phones at a time, into the packs and the ready snapshot).
//!
//! | module | owns |
//! |---|---|
//! | [`mac`] | the `Mac` newtype: every spelling in, one canonical form out |
//! | [`catalog`] | vendors and models as data (`templates/<vendor>/vendor.toml`); User-Agent parsing |
//! | [`model`] | plain records: site, phone, line, setting, last-seen |
//! | [`config`] | command line and settings file |
//! | [`store`] | the database: migrations and every query |
//! | [`render`] | templates, their context, the ready snapshot, rendered files on disk and their memory cache |
//! | [`firmware`] | what an image is: its bytes, known builds, claims from file names, versions, the allow/deny policy, and the one judgement every entry point uses |
//! | [`lastseen`] | last-seen records batched off the request path |
//! | [`publish`] | keeps the snapshot and the files on disk in step with the database, templates and policy; serves what is on disk at once after a start |
//! | [`access`] | repeated misses and bans: decisions, no I/O |
//! | [`auth`] | provisioning credentials on the wire: Basic, Digest, nonces, replay |
//! | [`net`] | address ranges for per-site allowed networks |
//! | [`audit`] | the fetch audit, batched off the request path |
//! | [`resolve`] | the one decision of what a request gets, for every transport |
//! | [`manage`] | the operator's verbs, shared by CLI and admin API |
//! | [`rollout`] | firmware verbs: store, assign, check, audit |
//! | [`recover`] | the recovery responder for bricked phones |
//! | [`import`] | bulk CSV import (validated, all or nothing, idempotent) and export |
//! | [`backup`] | online backup of an install to one archive, and its checked restore |
//! | [`doctor`] | read-only checks before a rollout: URLs, TFTP, policy, cloud and PBX credentials |
//! | [`tokens`] | admin API tokens, kept as hashes |
//! | [`users`] | web console users (argon2id), their sessions and CSRF tokens, failed-login slowing |
//! | [`outbound`] | rules for calling services we do not run: https, private secret files |
//! | [`pbx`] | PBX sync (NetSapiens v2/v1, SARK) through the import engine |
//! | [`ymcs`] | Yealink's cloud: register, RPS, reboot — planned, gated, paced |
//! | [`telemetry`] | every metric's name and labels; the Prometheus recorder |
//! | [`serve`] | transports and the server's lifetime: `bind`, `jobs`, `http` (phones), `admin_api` with `firmware_api` and `ymcs_api`, `console` (the web console at `/ui/`: one file per group of pages, forms CSRF-checked in `console::forms`), `state` (what handlers share), `tftp`, `tls` |
//!
//! The binary (`src/main.rs`, bootstrapping only) has the command-line edge in `src/cli/`: one
//! file per command group (`site`, `phone`, `line`, `setting`, `firmware`, `policy`, `import`
//! with export, `render`, `pbx`, `ymcs`, `audit`, `token`, `user`, `serve` with recover), each turning
//! its arguments into one library verb and printing the outcome.
//!
//! # Dependency rule
//!
//! One direction only: `serve` → `resolve`, `manage`, `publish` → `store`, `render`,
//! `lastseen`, `users` → `mac`, `catalog`, `model`, `config`. `firmware` (facts and the one judgement of
//! an image, no database) sits beside `render`: `publish`, `manage`, `rollout` and `resolve`
//! call it; `store` uses only its leaf `firmware::content` (hashing bytes). Nothing imports a
//! transport; `resolve` names no HTTP or socket type. sqlx lives only in `store`, tera only in
//! `render`, axum and askama (the console's pages) only in `serve`, clap only in `config`, reqwest only in `ymcs`, `pbx` and
//! `outbound`. Within a module, sibling files import one way too (what two siblings share sits
//! in a third, e.g. `serve::state`). `tests/layout.rs` checks all of this on the source: no
//! import cycle between modules or between sibling files, no file over 600 lines, no decision
//! by vendor name (vendors are `templates/<vendor>/vendor.toml`).

#![deny(clippy::dbg_macro, clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod access;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod catalog;
pub mod config;
pub mod doctor;
pub mod firmware;
pub mod import;
pub mod lastseen;
pub mod mac;
pub mod manage;
pub mod model;
pub mod net;
pub mod outbound;
pub mod pbx;
pub mod publish;
pub mod recover;
pub mod render;
pub mod resolve;
pub mod rollout;
pub mod serve;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod users;
pub mod ymcs;
