//! Measured boot is reproducible and sensitive: the same inputs give the
//! same measurement (also when the log is replayed), and one
//! changed byte, setting, role or debug flag gives another.

use trust::{Event, MeasuredConfig, Measurement, MeasurementLog};

/// A named change to the configuration.
type Change = (&'static str, fn(&mut MeasuredConfig));

fn config() -> MeasuredConfig {
    MeasuredConfig {
        mem: 128 << 20,
        cpus: 1,
        role: "trusted".into(),
        debug: false,
        disks_read_only: vec![false],
        nets: 0,
        balloon: false,
        rng: true,
        vsock_cid: Some(5),
    }
}

fn log() -> MeasurementLog {
    MeasurementLog::of(
        b"kernel bytes",
        Some(b"initrd bytes"),
        "console=ttyAMA0",
        &config(),
    )
}

#[test]
fn the_same_inputs_give_the_same_measurement() {
    assert_eq!(log(), log());
    // Replaying the log's events gives its measurement.
    let replayed = MeasurementLog::from_events(log().events);
    assert_eq!(replayed.measurement, log().measurement);
    // The fold is the documented one: m1 = SHA-256(0^32 || SHA-256(event0)), ...
    let mut m = [0u8; 32];
    for e in &log().events {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(m);
        h.update(sha2::Sha256::digest(e.encode()));
        m = h.finalize().into();
    }
    assert_eq!(Measurement(m), log().measurement);
}

#[test]
fn every_input_changes_the_measurement() {
    let base = log().measurement;
    let mut seen = vec![base];
    let mut differs = |m: Measurement, what: &str| {
        assert!(!seen.contains(&m), "{what} did not change the measurement");
        seen.push(m);
    };
    differs(
        MeasurementLog::of(
            b"kernel byteS",
            Some(b"initrd bytes"),
            "console=ttyAMA0",
            &config(),
        )
        .measurement,
        "kernel",
    );
    differs(
        MeasurementLog::of(
            b"kernel bytes",
            Some(b"initrd byteS"),
            "console=ttyAMA0",
            &config(),
        )
        .measurement,
        "initrd",
    );
    differs(
        MeasurementLog::of(b"kernel bytes", None, "console=ttyAMA0", &config()).measurement,
        "no initrd",
    );
    differs(
        MeasurementLog::of(
            b"kernel bytes",
            Some(b"initrd bytes"),
            "console=ttyAMA1",
            &config(),
        )
        .measurement,
        "cmdline",
    );
    let changes: [Change; 8] = [
        ("mem", |c| c.mem += 4096),
        ("cpus", |c| c.cpus = 2),
        ("role", |c| c.role = "open".into()),
        ("debug", |c| c.debug = true),
        ("disk", |c| c.disks_read_only[0] = true),
        ("nets", |c| c.nets = 1),
        ("balloon", |c| c.balloon = true),
        ("vsock", |c| c.vsock_cid = Some(6)),
    ];
    for (what, change) in changes {
        let mut c = config();
        change(&mut c);
        differs(
            MeasurementLog::of(
                b"kernel bytes",
                Some(b"initrd bytes"),
                "console=ttyAMA0",
                &c,
            )
            .measurement,
            what,
        );
    }
}

#[test]
fn the_log_reads_and_measurements_parse() {
    let text = log().render();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[0].starts_with("0 kernel sha256="), "{text}");
    assert!(
        lines[2].starts_with("2 cmdline \"console=ttyAMA0\""),
        "{text}"
    );
    assert!(lines[3].contains("role=trusted debug=false"), "{text}");
    let m: Measurement = lines[4]
        .strip_prefix("measurement ")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(m, log().measurement);
    assert!("xyz".parse::<Measurement>().is_err());
    assert!(matches!(log().events[1], Event::Initrd { sha256: Some(_) }));
}
