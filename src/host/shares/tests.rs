use super::masks::{Hidden, Why};
use super::*;
use crate::host::shares::confine::Refused;

fn tree() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().canonicalize().unwrap();
    (d, p)
}

#[test]
fn mount_args_parse_with_clear_errors() {
    let (_d, p) = tree();
    let s = p.display().to_string();
    assert_eq!(
        parse(&s, &[]).unwrap(),
        Some(Mount {
            path: p.clone(),
            readonly: false
        })
    );
    assert!(parse(&format!("{s}:ro"), &[]).unwrap().unwrap().readonly);
    assert_eq!(parse("none", &[]).unwrap(), None);
    let e = parse("/nonexistent/dir", &[]).unwrap_err().to_string();
    assert!(
        e.starts_with("--mount /nonexistent/dir: /nonexistent/dir: No such file"),
        "{e}"
    );
    assert!(e.ends_with("or --mount none)"), "{e}");
    let e = parse("/etc", &[]).unwrap_err().to_string();
    assert!(e.contains("inside the guest's system directories"), "{e}");
    let f = p.join("file");
    std::fs::write(&f, "x").unwrap();
    assert!(parse(f.to_str().unwrap(), &[])
        .unwrap_err()
        .to_string()
        .contains("is not a directory"));
}

#[test]
fn the_store_is_never_shared_and_root_s_home_is_said_not_shared() {
    let (_d, p) = tree();
    let store = p.join("data/b2d");
    std::fs::create_dir_all(store.join("machines/dev")).unwrap();
    let hidden = [Hidden {
        path: store.clone(),
        why: Why::B2d,
    }];
    let inside = store.join("machines/dev").display().to_string();
    let e = parse(&inside, &hidden).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "--mount {inside}: {} holds b2d's machines",
            store.display()
        )),
        "{e}"
    );
    // Root's home is the guest's own /root: not shared, and said.
    let root = from_args(&[], Some(Path::new("/root")), &hidden).unwrap();
    assert!(root.mounts.is_empty());
    let said = root.notes[0].to_string();
    assert!(
        said.starts_with("not sharing your home /root: /root: inside the guest's system directories; share a folder with `b2d up --mount DIR`"),
        "{said}"
    );
}

#[test]
fn home_by_default_none_for_nothing_and_args_for_qemu() {
    let (_d, home) = tree();
    let got = from_args(&[], Some(&home), &[]).unwrap();
    assert_eq!(got.mounts.len(), 1);
    assert!(got.notes.is_empty());
    assert!(!got.mounts[0].readonly);
    assert!(from_args(&["none".into()], Some(&home), &[])
        .unwrap()
        .mounts
        .is_empty());
    let ro = format!("{}:ro", home.display());
    let two = from_args(&[ro.clone(), ro], None, &[]).unwrap().mounts;
    assert_eq!(two.len(), 1, "the same directory once");
    let m = crate::host::store::sample("/m/a,b");
    let plan = |ns: bool, fs: ShareFs| Plan {
        virtiofsd: (fs == ShareFs::Virtiofs).then(|| PathBuf::from("/bin/virtiofsd")),
        namespaces: ns,
        shares: vec![Planned {
            mount: two[0].clone(),
            masks: Vec::new(),
            exposes: None,
        }],
        ..Plan::none()
    };
    let args = qemu_args(&m, &plan(false, ShareFs::NineP), true);
    assert_eq!(args[0], "-virtfs");
    assert_eq!(
        args[1],
        format!(
            "local,path={},mount_tag=b2d0,security_model=none,id=b2d0,readonly=on",
            home.display()
        )
    );
    assert_eq!(
        args[2..],
        [
            "-fw_cfg",
            "name=opt/org.b2d/config,file=/m/a,,b/guest-config.json"
        ]
    );
    // Confined, QEMU serves the share's view.
    let confined = qemu_args(&m, &plan(true, ShareFs::NineP), true);
    assert_eq!(
        confined[1],
        "local,path=/m/a,,b/share0,mount_tag=b2d0,security_model=none,id=b2d0,readonly=on,multidevs=remap"
    );
    let virtiofs = plan(true, ShareFs::Virtiofs);
    let c = guest_config(&virtiofs);
    assert_eq!(c.shares[0].path, home.display().to_string());
    assert!(c.shares[0].readonly);
    assert_eq!(c.shares[0].fs, ShareFs::Virtiofs);
    let v = qemu_args(&m, &virtiofs, true);
    assert!(!v.iter().any(|a| a == "-virtfs"), "{v:?}");
    assert!(
        v.contains(&"vhost-user-fs-pci,chardev=vfs0,tag=b2d0,id=vfsdev0,addr=0x10".to_string()),
        "{v:?}"
    );
    assert_eq!(
        v[v.len() - 2..],
        [
            "-fw_cfg",
            "name=opt/org.b2d/config,file=/m/a,,b/guest-config.json"
        ]
    );
}

fn refused() -> Result<(), Refused> {
    Err(Refused::NoUserNamespace("not permitted"))
}

#[test]
fn virtiofs_when_installed_and_confinable_9p_otherwise_and_an_error_when_demanded() {
    let (_d, home) = tree();
    let one = vec![Mount {
        path: home.clone(),
        readonly: false,
    }];
    let bin = || Some(PathBuf::from("/usr/libexec/virtiofsd"));
    let auto = plan(None, &one, &[], bin, || Ok(())).unwrap();
    assert_eq!(auto.fs(), ShareFs::Virtiofs);
    assert_eq!(auto.virtiofsd, bin());
    assert!(auto.namespaces && auto.notes.is_empty());
    let fallback = plan(None, &one, &[], || None, || Ok(())).unwrap();
    assert_eq!(fallback.fs(), ShareFs::NineP);
    assert_eq!(fallback.fell_back, Some(FellBack::NoVirtiofsd));
    assert!(fallback.notes[0]
        .to_string()
        .starts_with("no virtiofsd found"));
    // No user namespaces: no confined virtiofsd, so 9p, and said why.
    let unconfined = plan(None, &one, &[], bin, refused).unwrap();
    assert_eq!(unconfined.fs(), ShareFs::NineP);
    assert!(!unconfined.namespaces);
    assert_eq!(
        unconfined.notes[0].to_string(),
        "folders are shared through 9p, not virtiofs: b2d runs virtiofsd confined in a user namespace, and this host refuses unprivileged user namespaces (not permitted)"
    );
    assert!(matches!(
        plan(Some(ShareFs::Virtiofs), &one, &[], bin, refused),
        Err(ShareError::Unconfined(_))
    ));
    assert_eq!(
        plan(Some(ShareFs::Virtiofs), &one, &[], || None, || Ok(())),
        Err(ShareError::NoVirtiofsd)
    );
    let nine = plan(Some(ShareFs::NineP), &one, &[], bin, || Ok(())).unwrap();
    assert_eq!((nine.fs(), nine.shares.len()), (ShareFs::NineP, 1));
    assert_eq!(
        plan(
            None,
            &[],
            &[],
            || panic!("not asked"),
            || panic!("not asked")
        )
        .unwrap(),
        Plan::none()
    );
    assert_eq!(parse_type("auto"), Ok(None));
    assert_eq!(parse_type("9p"), Ok(Some(ShareFs::NineP)));
    assert!(parse_type("nfs")
        .unwrap_err()
        .to_string()
        .contains("--mount-type nfs"));
}

#[test]
fn a_share_that_needs_masks_it_cannot_have_is_left_out_and_said() {
    let (_d, root) = tree();
    let (home, src) = (root.join("home"), root.join("home/src"));
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::create_dir_all(&src).unwrap();
    let hidden = [Hidden {
        path: home.join(".ssh"),
        why: Why::Credentials,
    }];
    let mounts: Vec<Mount> = [&home, &src]
        .iter()
        .map(|p| Mount {
            path: p.to_path_buf(),
            readonly: false,
        })
        .collect();
    let confined = plan(None, &mounts, &hidden, || None, || Ok(())).unwrap();
    assert_eq!(confined.shares.len(), 2);
    assert_eq!(confined.shares[0].masks, [PathBuf::from(".ssh")]);
    let bare = plan(None, &mounts, &hidden, || None, refused).unwrap();
    assert_eq!(bare.shares.len(), 1, "only the folder without secrets");
    assert_eq!(bare.shares[0].mount.path, src);
    let said: Vec<String> = bare.notes.iter().map(ToString::to_string).collect();
    assert!(
        said.iter().any(|n| n.starts_with(&format!(
            "not sharing {} this boot: hiding .ssh in it needs a user namespace, and this host refuses",
            home.display()
        ))),
        "{said:?}"
    );
}

#[test]
fn a_share_replaced_by_a_symlink_or_gone_is_left_out_and_one_asked_for_is_exposed_with_a_line() {
    let (_d, root) = tree();
    let (ssh, src) = (root.join("home/.ssh"), root.join("home/src"));
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::create_dir_all(root.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(root.join("elsewhere"), &src).unwrap();
    let mounts: Vec<Mount> = [&ssh, &src, &root.join("gone")]
        .iter()
        .map(|p| Mount {
            path: p.to_path_buf(),
            readonly: true,
        })
        .collect();
    let hidden = [Hidden {
        path: ssh.clone(),
        why: Why::Credentials,
    }];
    let p = plan(None, &mounts, &hidden, || None, || Ok(())).unwrap();
    assert_eq!(p.shares.len(), 1);
    assert_eq!(p.shares[0].exposes.as_deref(), Some(ssh.as_path()));
    let said: Vec<String> = p.notes.iter().map(ToString::to_string).collect();
    assert_eq!(said.len(), 4, "{said:?}");
    assert!(said[1].starts_with(&format!(
        "sharing {}, as asked: the guest can read",
        ssh.display()
    )));
    assert_eq!(
        said[2],
        format!(
            "not sharing {} this boot: it is now a symlink to {}",
            src.display(),
            root.join("elsewhere").display()
        )
    );
    assert!(said[3].contains("No such file"), "{said:?}");
}
