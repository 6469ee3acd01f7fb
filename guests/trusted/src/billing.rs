//! The billing service: a ledger sealed to the VM ([`crate::vault`]) whose
//! every charge moves the rollback counter, so a restored older ledger is
//! detected; each charge answers a receipt signed by the VM's attestation
//! key, which anyone trusting the phone's root can check.

use serde::{Deserialize, Serialize};

use crate::vault::Vault;
use crate::wire::{ServiceResponse, Statement};

/// The ledger's slot on the data disk.
pub const SLOT: usize = 1;
/// Largest single charge, in cents.
pub const MAX_AMOUNT: u64 = 100_000_000;
/// Charges kept in the ledger (older ones live on in the totals).
const KEPT: usize = 100;
const SERVICE: &str = "billing";

/// One charge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// Its number (1, 2, ...).
    pub seq: u64,
    /// Cents.
    pub amount: u64,
    /// Who was paid.
    pub merchant: String,
}

#[derive(Default, Serialize, Deserialize)]
struct Ledger {
    recent: Vec<Charge>,
    charges: u64,
    total: u64,
}

/// A receipt: the charge and the ledger's totals after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The charge.
    pub charge: Charge,
    /// The ledger's total after it, in cents.
    pub total: u64,
}

/// `charge(amount, merchant)`: records it and answers a signed receipt.
pub fn charge(vault: &Vault<'_>, amount: u64, merchant: &str) -> Result<ServiceResponse, String> {
    if amount == 0 || amount > MAX_AMOUNT {
        return Err(format!("an amount is 1 to {MAX_AMOUNT} cents"));
    }
    if merchant.is_empty() || merchant.len() > 64 {
        return Err("a merchant is 1 to 64 bytes".into());
    }
    let mut ledger = vault.load::<Ledger>(SERVICE, SLOT)?.unwrap_or_default();
    ledger.charges += 1;
    ledger.total += amount;
    let charge = Charge {
        seq: ledger.charges,
        amount,
        merchant: merchant.to_string(),
    };
    ledger.recent.push(charge.clone());
    if ledger.recent.len() > KEPT {
        ledger.recent.remove(0);
    }
    vault.save(SERVICE, SLOT, &ledger)?;
    let receipt = Receipt {
        charge,
        total: ledger.total,
    };
    let mut content = Vec::new();
    ciborium::into_writer(&receipt, &mut content).expect("CBOR to memory");
    crate::server::sign_statement(
        vault.trust(),
        &Statement {
            purpose: "receipt".into(),
            content,
        },
    )
}

/// The ledger's totals.
pub fn ledger(vault: &Vault<'_>) -> Result<ServiceResponse, String> {
    let ledger = vault.load::<Ledger>(SERVICE, SLOT)?.unwrap_or_default();
    Ok(ServiceResponse::Ledger {
        charges: ledger.charges,
        total: ledger.total,
    })
}

/// Checks a receipt against the phone's root key; returns it.
pub fn verify_receipt(
    signed: &[u8],
    root: &ed25519_dalek::VerifyingKey,
) -> Result<(trust::CertifiedVm, Receipt), String> {
    let (vm, content) = crate::wire::verify_statement(signed, root, "receipt")?;
    let receipt =
        ciborium::from_reader(content.as_slice()).map_err(|e| format!("not a receipt: {e}"))?;
    Ok((vm, receipt))
}
