//! Dirty bitmaps of another page size: a host kernel logs host pages
//! (4 KiB, 16 KiB or 64 KiB), the VMM's log has a bit per 4 KiB page.

use board::ram::DIRTY_PAGE;

/// ORs `kernel` (a bit per host page of `host_page` bytes) into `log` (a
/// bit per 4 KiB page): a host page larger than 4 KiB marks each of its
/// 4 KiB pages.
pub(crate) fn widen_into(kernel: &[u64], host_page: u64, log: &mut [u64]) {
    let per = (host_page / DIRTY_PAGE).max(1);
    let bits = log.len() as u64 * 64;
    for (w, &word) in kernel.iter().enumerate() {
        let mut word = word;
        while word != 0 {
            let host = w as u64 * 64 + word.trailing_zeros() as u64;
            word &= word - 1;
            for page in (host * per..(host + 1) * per).take_while(|&p| p < bits) {
                log[(page / 64) as usize] |= 1 << (page % 64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::widen_into;

    #[test]
    fn host_pages_become_4k_pages() {
        let mut log = vec![0u64; 2];
        widen_into(&[0b101], 4096, &mut log);
        assert_eq!(log, [0b101, 0]);
        // 64 KiB host pages: host page 1 is 4 KiB pages 16..32, host page
        // 7 is 112..128; host page 8 lies past the log's 128 pages.
        let mut log = vec![0u64; 2];
        widen_into(&[1 << 1 | 1 << 7 | 1 << 8], 65536, &mut log);
        assert_eq!(log[0], 0xffff_0000);
        assert_eq!(log[1], 0xffff_u64 << 48);
    }
}
