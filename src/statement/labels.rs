//! The statement's words in Chinese and English: one table, one key per
//! label, so that a translation is a single line to change.
//!
//! It owns words only; it must not format numbers or know the layout.

use super::Lang;

/// (key, 中文, English).
const LABELS: &[(&str, &str, &str)] = &[
    ("title", "商户对账单", "Merchant statement"),
    ("merchant", "商户号", "Merchant"),
    ("period", "对账期间", "Period"),
    ("runs", "数据来源", "Source runs"),
    ("unit", "金额单位：元（人民币）", "Amounts in CNY (yuan)"),
    ("summary", "期间汇总", "Period summary"),
    ("settlement_date", "结算日", "Settlement date"),
    ("day_total", "当日合计", "Day total"),
    ("period_total", "期间合计", "Period total"),
    (
        "no_days",
        "本期间没有该商户的结算记录。",
        "No settlement of this merchant in this period.",
    ),
    ("came_in", "收入", "What came in"),
    ("deductions", "扣除", "Deductions"),
    ("adjustments_section", "调账", "Adjustments"),
    ("deposit_section", "押金", "Deposit"),
    ("payout_section", "结算", "Payout"),
    ("item", "项目", "Item"),
    ("particulars", "明细", "Particulars"),
    ("reason", "规则与原因", "Rule and reason"),
    ("amount", "金额", "Amount"),
    ("count_unit", "笔", "txn"),
    ("rate", "费率", "rate"),
    ("capped", "已封顶", "capped"),
    ("debit", "借记卡", "debit"),
    ("credit", "贷记卡", "credit"),
    ("rule", "规则", "rule"),
    ("txn_count", "交易笔数", "Transactions"),
    ("purchases", "消费金额", "Purchases"),
    ("refunds", "退货金额", "Refunds"),
    ("fees", "手续费", "Fees"),
    ("adjustments", "调账", "Adjustments"),
    ("carried_in", "上期结转欠款", "Shortfall brought in"),
    ("proceeds", "净收入", "Proceeds"),
    ("deposit_held", "押金冻结", "Deposit held"),
    ("deposit_released", "押金退还", "Deposit released"),
    (
        "deposit_forfeited",
        "押金没收（不扣款）",
        "Deposit forfeited (memo)",
    ),
    ("deactivation_fee", "注销扣费", "Deactivation fee"),
    ("payout", "结算付款", "Payout"),
    ("carried_out", "结转下期欠款", "Shortfall carried forward"),
    ("kind_carried_in", "上期欠款结转", "Shortfall brought in"),
    ("kind_purchase", "消费", "Purchases"),
    ("kind_fee", "手续费", "Fee"),
    ("kind_void", "撤销", "Voids"),
    ("kind_refund", "退货", "Refunds"),
    ("kind_fee_returned", "退还手续费", "Fee returned"),
    ("kind_adjustment", "调账", "Adjustment"),
    ("kind_deposit_hold", "押金冻结", "Deposit held"),
    (
        "kind_deposit_release",
        "押金退还（交易额达标）",
        "Deposit released (volume reached)",
    ),
    (
        "kind_deposit_release_final",
        "押金退还（注销结算）",
        "Deposit released (final settlement)",
    ),
    (
        "kind_deposit_forfeit",
        "押金没收（备注，不扣款）",
        "Deposit forfeited (memo, no money moves)",
    ),
    ("kind_deactivation_fee", "注销扣费", "Deactivation fee"),
    (
        "kind_deactivation_fee_waived",
        "注销扣费减免（退机）",
        "Deactivation fee waived (returned device)",
    ),
    ("kind_payout", "结算付款", "Payout"),
    (
        "kind_carried_out",
        "欠款结转下期",
        "Shortfall carried forward",
    ),
    ("corrects", "更正", "Corrects"),
    ("charged_on", "原扣款", "Charged"),
    ("correction", "更正金额", "Correction"),
    ("deposit_story", "押金情况", "Your deposit"),
    ("deposit_amount", "押金金额", "Deposit"),
    ("held_so_far", "累计冻结", "Held so far"),
    (
        "volume_target",
        "退还条件：交易额达到",
        "Released at net volume of",
    ),
    ("window", "考核期（交易日）", "Window (business dates)"),
    ("volume_reached", "已达交易额", "Volume reached"),
    ("days_left", "考核期剩余天数", "Days left in the window"),
    ("status", "状态", "Status"),
    ("collecting", "考核中", "Being collected"),
    ("released", "已退还", "Released"),
    ("forfeited", "已没收", "Forfeited"),
    ("decided_on", "判定结算日", "Decided in the settlement of"),
    ("reached_on", "达标交易日", "Volume reached on"),
    ("deactivated_on", "注销日", "Deactivated on"),
    (
        "window_ended",
        "考核期结束，交易额未达标",
        "The window ended short of the target",
    ),
    ("as_of", "截至", "As of"),
    ("deactivation_story", "注销扣费", "Deactivation fee"),
    ("fee_taken", "已扣注销费", "Fee taken"),
    ("fee_waived", "注销扣费已减免", "Fee waived"),
    ("activated_on", "开通日", "Activated on"),
    ("days_active", "开通至注销天数", "Days from activation"),
    ("return_window", "退机期（天）", "Return window (days)"),
    ("purchases_seen", "曾有消费", "Any purchase ever"),
    ("yes", "是", "yes"),
    ("no", "否", "no"),
    (
        "waiver_why",
        "在退机期内注销且从未消费，免收注销费。",
        "Returned within the return window with no purchase ever: no fee.",
    ),
    (
        "fee_why",
        "不符合退机减免条件（需在退机期内注销且从未消费）。",
        "Not a return: the waiver needs deactivation within the return window and no purchase ever.",
    ),
    (
        "no_deposit",
        "本期间没有押金事项。",
        "No deposit event up to this date.",
    ),
    ("given_back", "已退还（调账）", "Given back (adjustment)"),
    ("source_from", "结转自", "brought from"),
    ("source_adj_id", "调账编号", "adjustment"),
    ("source_deposit", "押金", "deposit"),
    ("source_held", "累计冻结", "held in total"),
    ("source_window", "考核期", "window"),
    ("source_target", "达标额", "target"),
    ("source_volume", "已达交易额", "volume"),
    ("source_reached_on", "达标日", "reached on"),
    ("source_deactivated_on", "注销日", "deactivated on"),
    ("source_activated_on", "开通日", "activated on"),
    ("source_days", "开通天数", "days"),
    (
        "source_return_window_days",
        "退机期天数",
        "return window days",
    ),
    ("source_purchases_seen", "曾有消费", "any purchase"),
    (
        "footer",
        "本对账单由 settle 根据已发布的结算文件与分录文件生成，每一分钱均可追溯。",
        "Generated by settle from the published settlement and journal files; every fen is traceable.",
    ),
];

/// The labels of `lang` as a JSON object for the template.
pub fn labels(lang: Lang) -> serde_json::Value {
    let map = LABELS
        .iter()
        .map(|(key, zh, en)| {
            let text = match lang {
                Lang::Zh => zh,
                Lang::En => en,
            };
            ((*key).to_string(), serde_json::Value::from(*text))
        })
        .collect();
    serde_json::Value::Object(map)
}

/// One label; the key itself when there is none (never in a test).
pub fn label(lang: Lang, key: &str) -> String {
    LABELS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map_or(key, |(_, zh, en)| match lang {
            Lang::Zh => zh,
            Lang::En => en,
        })
        .to_string()
}

/// The `html lang` attribute.
pub fn html_lang(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "zh-CN",
        Lang::En => "en",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key the template uses as `t.KEY` has a label in both
    /// languages, and no key is listed twice.
    #[test]
    fn the_template_finds_every_label() {
        let template = include_str!("templates/statement.html");
        for (at, _) in template.match_indices("t.") {
            let before = template[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                continue;
            }
            let key: String = template[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                LABELS
                    .iter()
                    .any(|(k, zh, en)| *k == key && !zh.is_empty() && !en.is_empty()),
                "the template uses t.{key}, which has no label"
            );
        }
        let mut keys: Vec<&str> = LABELS.iter().map(|(k, _, _)| *k).collect();
        keys.sort_unstable();
        let count = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), count, "a label key is listed twice");
    }
}
