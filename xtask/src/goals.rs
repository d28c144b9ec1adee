//! Issue 15's size goals for the mq firmware client, checked on every
//! `cargo xtask firmware`: what the mq build adds to the baseline in flash
//! (goal 16 KB, reported), and in static RAM beyond the buffers the
//! application chooses for the client (goal 4 KB, enforced: it is met, and a
//! change that breaks it fails the step).

use std::path::Path;

use crate::firmware::Sizes;
use crate::symbols;

/// Flash the mq client and application may add to the baseline.
const FLASH_GOAL: i64 = 16 * 1024;
/// Static RAM they may add beyond the client's buffers.
const RAM_GOAL: i64 = 4 * 1024;

/// The application's buffers for the client (outbox, inbox, frame buffers):
/// the `static` of this name, whatever function holds it.
const BUFFERS: &str = "::MQ_STORAGE";

/// Prints both goals against the mq build; `Err` when the RAM goal is missed.
pub fn check(baseline: Sizes, mq: Sizes, mq_elf: &Path) -> Result<(), String> {
    let buffers = buffers(&symbols::ram_symbols(mq_elf)?);
    let flash = mq.flash() as i64 - baseline.flash() as i64;
    let ram = mq.ram() as i64 - baseline.ram() as i64 - buffers;
    println!(
        "goal: flash mq adds {flash:+} of {FLASH_GOAL} ({})",
        verdict(flash, FLASH_GOAL)
    );
    println!(
        "goal: RAM mq adds beyond its buffers ({buffers}) {ram:+} of {RAM_GOAL} ({})",
        verdict(ram, RAM_GOAL)
    );
    if ram > RAM_GOAL {
        return Err(format!(
            "the mq build adds {ram} bytes of static RAM beyond its buffers: more than {RAM_GOAL}"
        ));
    }
    Ok(())
}

/// The size of the client's buffers among `ram`'s symbols.
fn buffers(ram: &symbols::Sizes) -> i64 {
    ram.iter()
        .filter(|(name, _)| name.ends_with(BUFFERS))
        .map(|(_, size)| size)
        .sum()
}

fn verdict(value: i64, goal: i64) -> String {
    if value <= goal {
        "met".to_owned()
    } else {
        format!("not met: {} over", value - goal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_the_storage_statics() {
        let ram: symbols::Sizes = [
            ("mps2_an386::app::Device::new::MQ_STORAGE", 4736),
            ("mps2_an386::app::Device::new::MQ_CLIENT", 3064),
            ("firmware::run::network::{{closure}}::TCP_TX_BUFFER", 16385),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_owned(), s))
        .collect();
        assert_eq!(buffers(&ram), 4736);
        assert_eq!(verdict(4096, RAM_GOAL), "met");
        assert_eq!(verdict(4428, RAM_GOAL), "not met: 332 over");
    }
}
