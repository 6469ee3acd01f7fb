//! `pocketvisor image export|inspect|import`: a VM as one portable,
//! encrypted, signed file (`crates/image`, docs/PHONE.md "Images").
//!
//! Export snapshots the running VM into a temporary directory of the phone
//! and streams that snapshot, the VM's kernel, initrd and disks into the
//! image, signed with the phone's root key. Import checks the whole image
//! (key, every chunk, the signer, the signature) before it writes
//! anything, then writes it into `STATE_DIR/imported/NAME/` under a
//! temporary name and renames it into place only when the second pass has
//! verified again; the VM joins the phone at its next `phone up` and
//! resumes from the snapshot.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use crate::phone_cli::fail;
use crate::trust_cli::phone_secret;
use image::write::Describe;
use image::{ImageReader, KeySource, Section};
use indicatif::{ProgressBar, ProgressStyle};
use phone::client::Client;
use phone::snapshot::{load_meta, SnapshotMeta};
use trust::DeviceSecret;

/// A progress bar on stderr for `total` bytes (drawn only on a terminal).
fn progress(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

fn read_passphrase(file: &Path) -> Result<Vec<u8>, String> {
    let mut p =
        std::fs::read(file).map_err(|e| format!("cannot read '{}': {e}", file.display()))?;
    while p.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        p.pop();
    }
    if p.is_empty() {
        return Err(format!("'{}' holds no passphrase", file.display()));
    }
    Ok(p)
}

/// `pocketvisor image export VM --phone DIR --out FILE (--passphrase-file F | --recipient HEX)`.
pub fn export(
    dir: &Path,
    vm: &str,
    out: &Path,
    passphrase: Option<&Path>,
    recipient: Option<&str>,
    cold: bool,
) -> ExitCode {
    match export_inner(dir, vm, out, passphrase, recipient, cold) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn export_inner(
    dir: &Path,
    vm: &str,
    out: &Path,
    passphrase: Option<&Path>,
    recipient: Option<&str>,
    cold: bool,
) -> Result<(), String> {
    let client = Client::for_phone(dir);
    // A trusted VM is refused first (its secrets are bound to this phone).
    client
        .call("POST", &format!("/vms/{vm}/export"), None)
        .and_then(|a| a.ok())?;
    let passphrase = passphrase.map(read_passphrase).transpose()?;
    let key = match (&passphrase, recipient) {
        (Some(p), None) => KeySource::Passphrase(p),
        (None, Some(r)) => {
            let bytes = trust::hex::decode(r.trim())
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or("--recipient is not a recipient key (64 hex digits; `phone identity --recipient` prints one)")?;
            KeySource::Recipient(bytes)
        }
        _ => return Err("give one of --passphrase-file and --recipient".into()),
    };
    if out.exists() {
        return Err(format!(
            "'{}' exists; an export never replaces a file",
            out.display()
        ));
    }
    let secret = phone_secret(dir)?;
    let exports = std::path::absolute(dir.join("exports")).map_err(|e| e.to_string())?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&exports)
        .map_err(|e| e.to_string())?;
    let snap = exports.join(format!(".snap-{vm}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&snap);
    let taken = if cold {
        cold_snapshot(&client, dir, vm, &snap)
    } else {
        let body = serde_json::json!({ "out": snap });
        client
            .call("POST", &format!("/vms/{vm}/snapshot"), Some(&body))
            .and_then(|a| a.ok())
            .map(|_| ())
    };
    let result = taken.and_then(|()| write_export(&snap, out, &key, &secret, cold));
    let _ = std::fs::remove_dir_all(&snap);
    result
}

/// A cold image's record of stopped VM `vm` (its entry, its disks at rest)
/// as `snap/snapshot.toml`.
fn cold_snapshot(client: &Client, dir: &Path, vm: &str, snap: &Path) -> Result<(), String> {
    let row = client
        .call("GET", &format!("/vms/{vm}"), None)
        .and_then(|a| a.ok())?;
    if row["state"] != "stopped" && row["state"] != "crashed" {
        return Err(format!(
            "VM {vm} is {}: stop it first (a cold image carries its disks at rest)",
            row["state"].as_str().unwrap_or("running")
        ));
    }
    let manifest = std::fs::read_to_string(dir.join("manifest.path"))
        .map_err(|e| format!("the phone's manifest: {e}"))
        .and_then(|p| phone::Manifest::load(Path::new(p.trim())).map_err(|e| e.to_string()))?;
    let entry = manifest
        .vm(vm)
        .ok_or_else(|| format!("the phone has no VM named \"{vm}\""))?;
    let meta = phone::snapshot::cold_meta(entry)?;
    DirBuilder::new()
        .mode(0o700)
        .create(snap)
        .map_err(|e| e.to_string())?;
    let text = toml::to_string(&meta).map_err(|e| e.to_string())?;
    std::fs::write(snap.join("snapshot.toml"), text).map_err(|e| e.to_string())
}

fn write_export(
    snap: &Path,
    out: &Path,
    key: &KeySource<'_>,
    secret: &DeviceSecret,
    cold: bool,
) -> Result<(), String> {
    let meta = if cold {
        phone::snapshot::load_record(snap)?
    } else {
        load_meta(snap)?
    };
    if meta.entry.nets > 0 {
        return Err(format!(
            "VM {} has network interfaces: images of VMs with NICs are not supported yet",
            meta.vm
        ));
    }
    let mut files: Vec<(String, PathBuf)> =
        vec![("snapshot.toml".into(), snap.join("snapshot.toml"))];
    if !cold {
        files.push(("state.bin".into(), snap.join("state.bin")));
        files.push(("memory.bin".into(), snap.join("memory.bin")));
    }
    files.push(("kernel".into(), meta.entry.kernel.clone()));
    if let Some(initrd) = &meta.entry.initrd {
        files.push(("initrd".into(), initrd.clone()));
    }
    for (i, d) in meta.disks.iter().enumerate() {
        files.push((format!("disk{i}"), d.path.clone()));
    }
    let mut sections = Vec::new();
    let mut total = 0;
    for (name, path) in &files {
        let f = File::open(path).map_err(|e| format!("cannot open '{}': {e}", path.display()))?;
        let size = f.metadata().map_err(|e| e.to_string())?.len();
        total += size;
        sections.push(Section {
            name: name.clone(),
            size,
            reader: Box::new(std::io::BufReader::with_capacity(1 << 20, f)),
        });
    }
    let partial = out.with_extension("pvi.partial");
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| format!("cannot create '{}': {e}", partial.display()))?;
    let bar = progress(total, "export");
    let start = Instant::now();
    let describe = Describe {
        vm: &meta.vm,
        role: &meta.role,
        mem: meta.mem,
        kind: if cold { "cold" } else { "snapshot" },
    };
    let written = image::write_image(
        BufWriter::with_capacity(1 << 20, &file),
        &describe,
        sections,
        key,
        secret.root().signing_key(),
        &mut |n| bar.set_position(n),
    );
    bar.finish_and_clear();
    let written = match written.and_then(|n| file.sync_all().map(|()| n).map_err(Into::into)) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.to_string());
        }
    };
    std::fs::rename(&partial, out).map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "exported VM {} to {}: {written} bytes for {total} bytes of VM files in {secs:.2} s ({:.1} MB/s)",
        meta.vm,
        out.display(),
        total as f64 / secs / 1e6
    );
    Ok(())
}

/// `pocketvisor image inspect FILE`: the header, without a key.
pub fn inspect(file: &Path) -> ExitCode {
    let reader = match open_image(file) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let h = reader.header();
    println!("vm       {} ({}, {} MiB RAM)", h.vm, h.role, h.mem >> 20);
    println!("kind     {}", h.kind);
    println!("cipher   {}", h.cipher);
    let key = match &h.key {
        image::KeyHeader::Passphrase { m_cost, t_cost, .. } => {
            format!(
                "passphrase (Argon2id, {} MiB, {t_cost} passes)",
                m_cost >> 10
            )
        }
        image::KeyHeader::Recipient { recipient, .. } => {
            format!("recipient {}", trust::hex::encode(recipient))
        }
    };
    println!("key      {key}");
    println!("signer   {}", trust::hex::encode(&h.signer));
    println!("created  {} (Unix time)", h.created);
    for s in &h.sections {
        println!("section  {:<14} {} bytes", s.name, s.size);
    }
    ExitCode::SUCCESS
}

/// `pocketvisor image import FILE --phone DIR [--passphrase-file F] [--trust-signer F...]`.
pub fn import(file: &Path, dir: &Path, passphrase: Option<&Path>, signers: &[PathBuf]) -> ExitCode {
    match import_inner(file, dir, passphrase, signers) {
        Ok((name, joined, cold)) => {
            let how = match (joined, cold) {
                (true, false) => "it resumed",
                (true, true) => "it is booting",
                (false, false) => "it resumes at the phone's next `phone up`",
                (false, true) => "it boots at the phone's next `phone up`",
            };
            println!("imported VM {name} into {}; {how}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn open_image(file: &Path) -> Result<ImageReader<std::io::BufReader<File>>, String> {
    let f = File::open(file).map_err(|e| format!("cannot open '{}': {e}", file.display()))?;
    ImageReader::open(std::io::BufReader::with_capacity(1 << 20, f))
        .map_err(|e| format!("'{}': {e}", file.display()))
}

/// Imports; returns the VM's name, whether it joined the running phone and
/// whether the image was cold.
fn import_inner(
    file: &Path,
    dir: &Path,
    passphrase: Option<&Path>,
    signers: &[PathBuf],
) -> Result<(String, bool, bool), String> {
    let secret = phone_secret(dir)?;
    let passphrase = passphrase.map(read_passphrase).transpose()?;
    let source = match &passphrase {
        Some(p) => KeySource::Passphrase(p),
        None => KeySource::RecipientSecret(secret.recipient_secret()),
    };
    let mut trusted = vec![secret.root().public()];
    for s in signers {
        trusted.push(crate::migrate_cli::identity_key(s, "--trust-signer")?);
    }
    let reader = open_image(file)?;
    let header = reader.header().clone();
    let name = header.vm.clone();
    let imported = phone::manifest::imported_dir(dir);
    let target = imported.join(&name);
    if target.exists() {
        return Err(format!(
            "the phone already has an imported VM named \"{name}\""
        ));
    }
    let key = reader.key(&source).map_err(|e| e.to_string())?;
    // Pass 1: everything verifies before anything is written.
    let total: u64 = header.sections.iter().map(|s| s.size).sum();
    let bar = progress(total, "verify");
    reader
        .read_all(&key, &trusted, &mut |_, _| Ok(()), &mut |n| {
            bar.set_position(n)
        })
        .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    // Pass 2: write under a temporary name, verifying again.
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&imported)
        .map_err(|e| e.to_string())?;
    let tmp = imported.join(format!(".tmp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    // The phone's manifest (when it was started once) says which CIDs are taken.
    let manifest = std::fs::read_to_string(dir.join("manifest.path"))
        .ok()
        .map(|p| phone::Manifest::load(Path::new(p.trim())))
        .transpose()
        .map_err(|e| format!("the phone's manifest: {e}"))?;
    if manifest.as_ref().is_some_and(|m| m.vm(&name).is_some()) {
        return Err(format!("the phone already has a VM named \"{name}\""));
    }
    let cid = manifest.as_ref().map(phone::Manifest::free_cid);
    let result = extract(file, &header, &key, &trusted, &tmp)
        .and_then(|()| finish(&tmp, &target, &header, cid));
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &target).map_err(|e| e.to_string())?;
    // The phone must still load with it.
    if let Some(m) = &manifest {
        if let Err(e) = phone::Manifest::load(m.source.as_deref().unwrap_or(Path::new(""))) {
            let _ = std::fs::remove_dir_all(&target);
            return Err(format!("the phone cannot take VM {name}: {e}"));
        }
    }
    // A running phone takes it at once: a live snapshot resumes.
    let client = phone::client::Client::for_phone(dir);
    let cold = header.kind == "cold";
    if !client.is_up() {
        return Ok((name, false, cold));
    }
    let body = serde_json::json!({ "vm": name });
    match client
        .call("POST", "/phone/adopt", Some(&body))
        .and_then(|a| a.ok())
    {
        Ok(_) => Ok((name, true, cold)),
        Err(e) => Err(format!(
            "imported VM {name}, but the running phone did not start it: {e}"
        )),
    }
}

/// Writes every section of the image into `tmp` (snapshot files under
/// `tmp/snapshot`); memory stays sparse.
fn extract(
    file: &Path,
    header: &image::Header,
    key: &image::ContentKey,
    trusted: &[ed25519_dalek::VerifyingKey],
    tmp: &Path,
) -> Result<(), String> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(tmp.join("snapshot"))
        .map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for s in &header.sections {
        let path = match s.name.as_str() {
            "snapshot.toml" | "state.bin" | "memory.bin" => tmp.join("snapshot").join(&s.name),
            other => tmp.join(other),
        };
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("cannot create '{}': {e}", path.display()))?;
        files.push((f, s.size));
    }
    let bar = progress(header.sections.iter().map(|s| s.size).sum(), "import");
    let reader = open_image(file)?;
    let mut sink = |s: usize, bytes: &[u8]| -> std::io::Result<()> {
        let f = &mut files[s].0;
        if bytes.iter().all(|b| *b == 0) {
            f.seek(SeekFrom::Current(bytes.len() as i64)).map(|_| ())
        } else {
            f.write_all(bytes)
        }
    };
    reader
        .read_all(key, trusted, &mut sink, &mut |n| bar.set_position(n))
        .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    for (f, size) in &files {
        f.set_len(*size)
            .and_then(|()| f.sync_all())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Points the snapshot at the imported files and writes the VM's entry
/// (`vm.toml`) and the snapshot's `PENDING` mark.
fn finish(
    tmp: &Path,
    target: &Path,
    header: &image::Header,
    cid: Option<u64>,
) -> Result<(), String> {
    let snapshot = tmp.join("snapshot");
    let mut meta: SnapshotMeta = if header.kind == "cold" {
        phone::snapshot::load_record(&snapshot)?
    } else {
        load_meta(&snapshot)?
    };
    if meta.vm != header.vm || meta.mem != header.mem {
        return Err("the image's snapshot does not match its header".into());
    }
    for (i, d) in meta.disks.iter_mut().enumerate() {
        d.path = target.join(format!("disk{i}"));
        // Another file now: hashed again at the restore.
        d.stamp = None;
    }
    let text = toml::to_string(&meta).map_err(|e| e.to_string())?;
    std::fs::write(snapshot.join("snapshot.toml"), text).map_err(|e| e.to_string())?;
    let q = |p: &Path| format!("{:?}", p.display().to_string());
    let mut entry = format!(
        "[[vm]]\nname = {:?}\nrole = {:?}\nkernel = {}\ncmdline = {:?}\nmem = \"{}K\"\nballoon = {}\nrng = {}\n",
        meta.vm,
        meta.role,
        q(&target.join("kernel")),
        meta.entry.cmdline,
        meta.mem >> 10,
        meta.entry.balloon,
        meta.entry.rng,
    );
    if let Some(cid) = cid {
        entry.push_str(&format!("cid = {cid}\n"));
    }
    if meta.entry.initrd.is_some() {
        entry.push_str(&format!("initrd = {}\n", q(&target.join("initrd"))));
    }
    let disks: Vec<String> = meta
        .disks
        .iter()
        .map(|d| {
            format!(
                "{:?}",
                format!(
                    "{}{}",
                    d.path.display(),
                    if d.read_only { ",ro" } else { "" }
                )
            )
        })
        .collect();
    entry.push_str(&format!("disks = [{}]\n", disks.join(", ")));
    std::fs::write(tmp.join("vm.toml"), entry).map_err(|e| e.to_string())?;
    if header.kind == "cold" {
        // Nothing to resume: it boots afresh.
        return Ok(());
    }
    std::fs::write(snapshot.join("PENDING"), b"").map_err(|e| e.to_string())
}
