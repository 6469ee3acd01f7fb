//! Images round-trip, and every tampering class is refused: any flipped
//! byte, any truncation, chunks reordered, duplicated, dropped or taken
//! from another file, a wrong passphrase or recipient, an unknown signer.

use ed25519_dalek::SigningKey;
use image::format::ImageError;
use image::keys::recipient_public;
use image::{write_image, Describe, ImageReader, KeySource, Section};

const DESCRIBE: Describe<'static> = Describe {
    vm: "personal",
    role: "open",
    mem: 128 << 20,
    kind: "snapshot",
};

fn signer() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2654435761)
                .wrapping_add(seed as u32) as u8
                ^ (i >> 13) as u8
        })
        .collect()
}

fn sections(parts: &[Vec<u8>]) -> Vec<Section<'_>> {
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| Section {
            name: format!("part{i}"),
            size: p.len() as u64,
            reader: Box::new(p.as_slice()),
        })
        .collect()
}

fn make(parts: &[Vec<u8>], key: &KeySource<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    write_image(
        &mut out,
        &DESCRIBE,
        sections(parts),
        key,
        &signer(),
        &mut |_| {},
    )
    .unwrap();
    out
}

/// Reads `image` whole: the sections' bytes, or why it was refused.
fn read(image: &[u8], key: &KeySource<'_>) -> Result<Vec<Vec<u8>>, ImageError> {
    let r = ImageReader::open(image)?;
    let n = r.header().sections.len();
    let key = r.key(key)?;
    let mut out = vec![Vec::new(); n];
    r.read_all(
        &key,
        &[signer().verifying_key()],
        &mut |s, b| {
            out[s].extend_from_slice(b);
            Ok(())
        },
        &mut |_| {},
    )?;
    Ok(out)
}

const SECRET: [u8; 32] = [9; 32];

#[test]
fn round_trips_with_a_passphrase_and_a_recipient() {
    let parts = vec![
        b"name = \"personal\"\n".to_vec(),
        data(3 << 20 | 12345, 1),
        Vec::new(),
    ];
    let image = make(&parts, &KeySource::Passphrase(b"correct horse"));
    assert_eq!(
        read(&image, &KeySource::Passphrase(b"correct horse")).unwrap(),
        parts
    );
    assert!(matches!(
        read(&image, &KeySource::Passphrase(b"wrong horse")),
        Err(ImageError::WrongKey)
    ));
    let header = ImageReader::open(image.as_slice())
        .unwrap()
        .header()
        .clone();
    assert_eq!((header.vm.as_str(), header.sections.len()), ("personal", 3));

    let image = make(&parts, &KeySource::Recipient(recipient_public(&SECRET)));
    assert_eq!(
        read(&image, &KeySource::RecipientSecret(SECRET)).unwrap(),
        parts
    );
    assert!(matches!(
        read(&image, &KeySource::RecipientSecret([8; 32])),
        Err(ImageError::WrongKey)
    ));
    // Zeros compress: a sparse 8 MiB memory image is small.
    let zeros = make(
        &[vec![0u8; 8 << 20]],
        &KeySource::Recipient(recipient_public(&SECRET)),
    );
    assert!(zeros.len() < 64 << 10, "{} bytes", zeros.len());
}

#[test]
fn an_unknown_signer_is_refused() {
    let image = make(
        &[data(1000, 2)],
        &KeySource::Recipient(recipient_public(&SECRET)),
    );
    let r = ImageReader::open(image.as_slice()).unwrap();
    let key = r.key(&KeySource::RecipientSecret(SECRET)).unwrap();
    let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
    let got = r.read_all(&key, &[other], &mut |_, _| Ok(()), &mut |_| {});
    assert!(matches!(got, Err(ImageError::UnknownSigner(_))));
}

#[test]
fn every_flipped_byte_and_every_truncation_is_refused() {
    let key = KeySource::Recipient(recipient_public(&SECRET));
    let image = make(&[data(700, 3), data(1500, 4)], &key);
    let open = KeySource::RecipientSecret(SECRET);
    assert!(read(&image, &open).is_ok());
    for i in 0..image.len() {
        for bit in [0x01, 0x80] {
            let mut bad = image.clone();
            bad[i] ^= bit;
            assert!(
                read(&bad, &open).is_err(),
                "flipping bit {bit:#x} of byte {i} went unnoticed"
            );
        }
    }
    for len in 0..image.len() {
        assert!(
            read(&image[..len], &open).is_err(),
            "cut at {len} went unnoticed"
        );
    }
    let mut longer = image.clone();
    longer.push(0);
    assert!(read(&longer, &open).is_err());
}

/// The byte ranges of an image's chunks (after the header).
fn chunks(image: &[u8]) -> (usize, Vec<std::ops::Range<usize>>) {
    let header_len = u32::from_be_bytes(image[12..16].try_into().unwrap()) as usize;
    let start = 16 + header_len;
    let mut at = start;
    let mut out = Vec::new();
    while &image[at..at + 8] != b"PVIEND\0\0" {
        let len = u32::from_be_bytes(image[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push(at..at + 12 + len);
        at += 12 + len;
    }
    (start, out)
}

fn rebuild(image: &[u8], order: &[std::ops::Range<usize>], from: usize, to: usize) -> Vec<u8> {
    let mut out = image[..from].to_vec();
    for r in order {
        out.extend_from_slice(&image[r.clone()]);
    }
    out.extend_from_slice(&image[to..]);
    out
}

#[test]
fn chunks_cannot_be_reordered_duplicated_dropped_or_swapped_between_files() {
    let key = KeySource::Recipient(recipient_public(&SECRET));
    let open = KeySource::RecipientSecret(SECRET);
    let parts = [data(3 << 20, 5)];
    let image = make(&parts, &key);
    let (start, c) = chunks(&image);
    assert_eq!(c.len(), 3);
    let end = c[2].end;
    let cases: [(&str, Vec<std::ops::Range<usize>>); 4] = [
        ("reordered", vec![c[0].clone(), c[2].clone(), c[1].clone()]),
        (
            "duplicated",
            vec![c[0].clone(), c[1].clone(), c[1].clone(), c[2].clone()],
        ),
        ("dropped", vec![c[0].clone(), c[2].clone()]),
        ("dropped last", vec![c[0].clone(), c[1].clone()]),
    ];
    for (what, order) in cases {
        let got = read(&rebuild(&image, &order, start, end), &open);
        assert!(
            matches!(got, Err(ImageError::Tampered(_))),
            "{what}: {got:?}"
        );
    }
    // The same chunk position from another file of the same VM and key owner.
    let other = make(&parts, &key);
    let (_, oc) = chunks(&other);
    let mut swapped = image[..c[1].start].to_vec();
    swapped.extend_from_slice(&other[oc[1].clone()]);
    swapped.extend_from_slice(&image[c[1].end..]);
    assert!(matches!(
        read(&swapped, &open),
        Err(ImageError::Tampered(_))
    ));
}

#[test]
fn not_an_image_and_other_versions_are_named() {
    assert!(matches!(
        read(b"hello world, not an image", &KeySource::Passphrase(b"x")),
        Err(ImageError::NotAnImage)
    ));
    let mut image = make(
        &[data(10, 6)],
        &KeySource::Recipient(recipient_public(&SECRET)),
    );
    image[11] = 9;
    assert!(matches!(
        read(&image, &KeySource::RecipientSecret(SECRET)),
        Err(ImageError::Version(9))
    ));
}
