//! The pack's promises: what is written reads back byte for byte with the same entity tag,
//! nothing is visible before `finish`, damage is never served, and a restart finds the newest
//! complete generation.

use super::*;

fn mac(s: &str) -> Mac {
    Mac::from_bare(s).unwrap()
}

fn file(text: &str) -> Arc<ReadyFile> {
    Arc::new(ReadyFile::new(
        text.as_bytes().to_vec(),
        crate::render::file::RECORD_CONTENT_TYPE,
    ))
}

#[test]
fn round_trip_generations_and_appends() {
    let dir = tempfile::tempdir().unwrap();
    let d = DiskFiles::open(dir.path(), 1 << 20).unwrap();
    let (a, b) = (mac("805ec0aabbcc"), mac("805ec0aabbcd"));
    let cfg = file("#!version:1.0.0.1\naccount.1.enable = 1\n");
    let boot = file("#!version:1.0.0.1\ninclude:config \"y000000000123.cfg\"\n");
    let mut w = d.new_pack(7, None).unwrap();
    w.put(
        a,
        &[
            ("805ec0aabbcc.cfg".into(), cfg.clone()),
            ("805ec0aabbcc.boot".into(), boot.clone()),
        ],
    )
    .unwrap();
    assert!(d.load(7).is_none(), "nothing is visible before finish");
    let p1 = w.finish().unwrap();
    let got = d
        .read(&p1, 1, "805ec0aabbcc.cfg", a, Asked::Granted)
        .unwrap();
    assert_eq!((got.bytes(), *got.etag()), (&cfg.bytes[..], cfg.etag));
    assert_eq!(
        d.read(&p1, 1, "805ec0aabbcc.boot", a, Asked::Granted)
            .unwrap()
            .bytes(),
        &boot.bytes[..]
    );
    assert!(
        d.read(&p1, 1, "805ec0aabbcd.cfg", b, Asked::Granted)
            .is_none(),
        "unknown phone"
    );
    assert!(
        d.read(&p1, 1, "805ec0aabbcc.xml", a, Asked::Granted)
            .is_none(),
        "no such file"
    );

    // A few phones change: appended, and the reloaded index sees them.
    let cfg2 = file("#!version:1.0.0.1\naccount.1.enable = 0\n");
    let mut w = d.append(&p1).unwrap();
    w.put(a, &[("805ec0aabbcc.cfg".into(), cfg2.clone())])
        .unwrap();
    w.put(b, &[("805ec0aabbcd.cfg".into(), cfg.clone())])
        .unwrap();
    let p1b = w.finish().unwrap();
    let fresh = DiskFiles::open(dir.path(), 0).unwrap();
    let loaded = fresh.load(7).unwrap();
    assert_eq!(loaded.phones(), 2);
    assert_eq!(
        fresh
            .read(&loaded, 2, "805ec0aabbcc.cfg", a, Asked::Granted)
            .unwrap()
            .bytes(),
        &cfg2.bytes[..]
    );
    assert!(
        fresh
            .read(&loaded, 2, "805ec0aabbcc.boot", a, Asked::Granted)
            .is_none(),
        "the new record replaced the old"
    );
    // The old snapshot still reads what it published (from memory or its own index).
    assert_eq!(
        d.read(&p1, 1, "805ec0aabbcc.cfg", a, Asked::Granted)
            .unwrap()
            .bytes(),
        &cfg.bytes[..]
    );

    // A new generation replaces the old files; a removed phone is gone.
    let mut w = d.new_pack(7, Some(&p1b)).unwrap();
    w.put(b, &[("805ec0aabbcd.cfg".into(), cfg2.clone())])
        .unwrap();
    w.remove(a);
    let p2 = w.finish().unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path().join(DIR).join("7"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| n.ends_with("-2")), "{names:?}");
    let loaded = DiskFiles::open(dir.path(), 0).unwrap().load(7).unwrap();
    assert_eq!(loaded.phones(), 1);
    assert!(
        d.read(&p2, 3, "805ec0aabbcc.cfg", a, Asked::Granted)
            .is_none()
    );
    // p1b's file was unlinked, but a reader holding it still can read it.
    assert_eq!(
        fresh
            .read(&p1b, 4, "805ec0aabbcd.cfg", b, Asked::Granted)
            .unwrap()
            .bytes(),
        &cfg.bytes[..]
    );
}

#[test]
fn damage_is_never_served_and_a_broken_index_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = DiskFiles::open(dir.path(), 0).unwrap();
    let a = mac("805ec0aabbcc");
    let f = file("#!version:1.0.0.1\naccount.1.enable = 1\n");
    let mut w = d.new_pack(3, None).unwrap();
    w.put(a, &[("805ec0aabbcc.cfg".into(), f.clone())]).unwrap();
    let p = w.finish().unwrap();
    let pack = dir.path().join(DIR).join("3").join("pack-1");
    let mut raw = std::fs::read(&pack).unwrap();
    let n = raw.len();
    raw[n - 3] ^= 1;
    std::fs::write(&pack, &raw).unwrap();
    assert!(
        d.read(&p, 1, "805ec0aabbcc.cfg", a, Asked::Granted)
            .is_none(),
        "a flipped bit is not served"
    );
    std::fs::write(&pack, &raw[..10]).unwrap();
    assert!(
        d.read(&p, 2, "805ec0aabbcc.cfg", a, Asked::Granted)
            .is_none(),
        "a cut record is not served"
    );
    // An index that does not check out is not used.
    let idx = dir.path().join(DIR).join("3").join("index-1");
    let mut raw = std::fs::read(&idx).unwrap();
    raw[8] ^= 1;
    std::fs::write(&idx, &raw).unwrap();
    assert!(d.load(3).is_none());
}

#[test]
fn state_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = DiskFiles::open(dir.path(), 0).unwrap();
    assert_eq!(d.state(), None);
    let s = State {
        epoch: "abc".into(),
        seq: 42,
    };
    d.set_state(&s).unwrap();
    assert_eq!(d.state(), Some(s));
}

#[test]
fn an_append_after_a_failed_one_lands_where_its_index_says() {
    let dir = tempfile::tempdir().unwrap();
    let d = DiskFiles::open(dir.path(), 0).unwrap();
    let (a, b) = (mac("805ec0aabbcc"), mac("805ec0aabbcd"));
    let mut w = d.new_pack(5, None).unwrap();
    w.put(a, &[("805ec0aabbcc.cfg".into(), file("one\n"))])
        .unwrap();
    let p = w.finish().unwrap();
    // A write that failed halfway (disk full) left bytes past the index's end.
    let pack = dir.path().join(DIR).join("5").join("pack-1");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&pack)
        .unwrap();
    f.write_all(b"PPR2 half a record").unwrap();
    let mut w = d.append(&p).unwrap();
    w.put(b, &[("805ec0aabbcd.cfg".into(), file("two\n"))])
        .unwrap();
    let p = w.finish().unwrap();
    assert_eq!(
        d.read(&p, 1, "805ec0aabbcd.cfg", b, Asked::Granted)
            .unwrap()
            .bytes(),
        b"two\n"
    );
    assert_eq!(
        d.read(&p, 1, "805ec0aabbcc.cfg", a, Asked::Granted)
            .unwrap()
            .bytes(),
        b"one\n"
    );
}

#[test]
fn an_unfinished_writer_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let d = DiskFiles::open(dir.path(), 0).unwrap();
    let a = mac("805ec0aabbcc");
    let site = dir.path().join(DIR).join("9");
    // A new generation that fails midway (a full disk): its file goes.
    let mut w = d.new_pack(9, None).unwrap();
    w.put(a, &[("805ec0aabbcc.cfg".into(), file("one\n"))])
        .unwrap();
    drop(w);
    assert!(!site.join("pack-1").exists());
    let mut w = d.new_pack(9, None).unwrap();
    w.put(a, &[("805ec0aabbcc.cfg".into(), file("one\n"))])
        .unwrap();
    let p = w.finish().unwrap();
    let len = std::fs::metadata(site.join("pack-1")).unwrap().len();
    // An append that fails midway: cut back to where it began.
    let mut w = d.append(&p).unwrap();
    w.put(
        a,
        &[("805ec0aabbcc.cfg".into(), file("two, never published\n"))],
    )
    .unwrap();
    drop(w);
    assert_eq!(std::fs::metadata(site.join("pack-1")).unwrap().len(), len);
    assert_eq!(
        d.read(&p, 1, "805ec0aabbcc.cfg", a, Asked::Granted)
            .unwrap()
            .bytes(),
        b"one\n"
    );
}

#[test]
fn the_compact_index_finds_every_phone_and_keeps_the_last_entry_of_a_repeat() {
    let macs: Vec<Mac> = (0..1000u32)
        .map(|i| mac(&format!("805ec0{:06x}", (i * 7919) % 0xffffff)))
        .collect();
    let mut entries: Vec<(Mac, u64, u32)> = macs
        .iter()
        .enumerate()
        .map(|(i, m)| (*m, (i as u64) << 33, i as u32))
        .collect();
    // A phone given twice (an append after a full render): the later entry wins.
    entries.push((macs[5], 42, 7));
    let idx = PackIndex::new(entries);
    assert_eq!(idx.len(), 1000);
    for (i, m) in macs.iter().enumerate() {
        let want = if i == 5 {
            (42, 7)
        } else {
            ((i as u64) << 33, i as u32)
        };
        assert_eq!(idx.get(*m), Some(want), "{m}");
    }
    assert_eq!(idx.get(mac("001122334455")), None);
    assert_eq!(idx.iter().count(), 1000);
}

#[test]
fn a_decoy_lookup_counts_nothing_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = DiskFiles::open(dir.path(), 1 << 20).unwrap();
    let known = mac("805ec0aabbcc");
    let mut w = d.new_pack(3, None).unwrap();
    w.put(known, &[("805ec0aabbcc.cfg".into(), file("a = 1\n"))])
        .unwrap();
    let p = w.finish().unwrap();
    // Kept from its fourth read from disk; the fifth is a memory hit.
    for _ in 0..5 {
        assert!(
            d.read(&p, 1, "805ec0aabbcc.cfg", known, Asked::Granted)
                .is_some()
        );
    }
    let before = d.cache().hits_misses();
    for name in ["001565000001.cfg", "000000000000.cfg", "805ec0aabbcc.cfg"] {
        d.decoy(&p, 1, name, mac("001565000001"));
        d.decoy(&p, 1, name, known);
    }
    assert_eq!(
        d.cache().hits_misses(),
        before,
        "a decoy is not a lookup the metrics count"
    );
    // An unknown MAC read after decoys is still a miss from disk, then nothing.
    assert!(
        d.read(
            &p,
            1,
            "001565000001.cfg",
            mac("001565000001"),
            Asked::Granted
        )
        .is_none()
    );
}
