//! The fee policy: what each payment method costs the therapist, from the configured table.

use super::model::Method;
use crate::config::{FeeRule, FeeTable};

/// The configured rule of `method`.
pub fn rule(table: &FeeTable, method: Method) -> FeeRule {
    match method {
        Method::Card => table.card,
        Method::Stripe => table.stripe,
        Method::Paypal => table.paypal,
        Method::Transfer => table.transfer,
        Method::Cash => table.cash,
        Method::Other => table.other,
    }
}

/// The fee of `amount_cents` under `rule`: `amount * percent_bps / 10000` (half-up) plus
/// `fixed_cents`, never more than the amount.
pub fn fee(rule: FeeRule, amount_cents: i64) -> i64 {
    let pct = (amount_cents * i64::from(rule.percent_bps) + 5_000) / 10_000;
    (pct + i64::from(rule.fixed_cents)).min(amount_cents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_round_half_up_and_never_exceed_the_amount() {
        let r = FeeRule {
            percent_bps: 290,
            fixed_cents: 25,
        };
        assert_eq!(fee(r, 10_000), 315);
        assert_eq!(fee(r, 10), 10);
        let pct = FeeRule {
            percent_bps: 150,
            fixed_cents: 0,
        };
        assert_eq!(fee(pct, 1_033), 15);
    }
}
