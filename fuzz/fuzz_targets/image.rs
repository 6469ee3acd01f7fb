//! The image reader under fuzzer input: any bytes as a `.pvi` file, read
//! whole with a recipient key and a trusted signer. It must refuse or
//! accept, never panic, hang or allocate without bound.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(reader) = image::ImageReader::open(data) else {
        return;
    };
    let Ok(key) = reader.key(&image::KeySource::RecipientSecret([9; 32])) else {
        return;
    };
    let signer = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    let _ = reader.read_all(&key, &[signer], &mut |_, _| Ok(()), &mut |_| {});
});
