use super::*;

const BASE: &str = r#"
[[category]]
name = "welfare"
mcc = ["8062", "9211-9399"]
debit_rate = "0"
credit_rate = "0"

[[category]]
name = "general"
default = true
debit_rate = "0.0038"
credit_rate = "0.0049"
debit_cap = "20.00"
"#;

fn parse_text(text: &str) -> Result<Settings> {
    parse(Path::new("settle.toml"), text)
}

fn error_text(text: &str) -> String {
    parse_text(text).expect_err("must be refused").to_string()
}

#[test]
fn defaults_are_the_documented_ones() {
    let settings = parse_text(BASE).unwrap();
    assert_eq!(settings.zone_offset_s, 8 * 3600);
    assert_eq!(settings.settlement_lag_days, 1);
    assert_eq!(settings.rounding, Rounding::HalfUp);
    assert_eq!(settings.max_rate_ppm, 4900);
    assert_eq!(settings.max_txn_amount_fen, 5_000_000);
    assert_eq!(settings.refund_fee, RefundFee::Kept);
    assert_eq!(settings.refund_retention_days, 180);
    assert_eq!(settings.deposit_refund_volume_fen, 3_000_000);
    assert_eq!(settings.deposit_refund_window_days, 90);
    assert_eq!(settings.deactivation_fee_fen, 19_900);
    assert_eq!(settings.return_window_days, 30);
}

#[test]
fn mcc_lookup_uses_ranges_and_the_default() {
    let settings = parse_text(BASE).unwrap();
    let cats = &settings.categories;
    assert_eq!(cats.get(cats.index_of(8062)).name, "welfare");
    assert_eq!(cats.get(cats.index_of(9211)).name, "welfare");
    assert_eq!(cats.get(cats.index_of(9399)).name, "welfare");
    assert_eq!(cats.get(cats.index_of(9210)).name, "general");
    assert_eq!(cats.get(cats.index_of(9400)).name, "general");
    assert_eq!(cats.get(cats.index_of(5812)).debit_cap_fen, Some(2000));
}

#[test]
fn errors_name_the_key() {
    let above = BASE.replace("credit_rate = \"0.0049\"", "credit_rate = \"0.0050\"");
    let message = error_text(&above);
    assert!(
        message.contains("category[1] (general).credit_rate") && message.contains("above max_rate"),
        "{message}"
    );

    let twice = BASE.replace("\"8062\", ", "\"8062\", \"8062\", ");
    assert!(error_text(&twice).contains("code 8062 is already listed"));

    let overlap = BASE.replace("default = true", "default = true\nmcc = [\"9300-9400\"]");
    let message = error_text(&overlap);
    assert!(
        message.contains("category[1] (general).mcc") && message.contains("9300"),
        "{message}"
    );

    assert!(error_text(&BASE.replace("9211-9399", "9399-9211")).contains("ascending range"));
    assert!(error_text(&BASE.replace("default = true", "")).contains("no category has default"));
    assert!(error_text(&format!("rounding = \"up\"\n{BASE}")).contains("rounding"));
    assert!(error_text(&format!("timezone = \"Asia/Shanghai\"\n{BASE}")).contains("timezone"));
    assert!(error_text(&format!("max_rate = 0.0049\n{BASE}")).contains("not a float"));
    assert!(
        error_text(&format!("settlement_lag = 1\n{BASE}"))
            .contains("settlement_lag: is not a known setting")
    );
    assert!(
        error_text(&format!("[deposit]\nrefund_window_days = 0\n{BASE}"))
            .contains("deposit.refund_window_days")
    );
    assert!(
        error_text(&format!("[deactivation]\nfee = \"-1.00\"\n{BASE}"))
            .contains("deactivation.fee")
    );
    assert!(
        error_text(&BASE.replace("debit_rate = \"0.0038\"", "debit_rate = \"0.0000001\""))
            .contains("debit_rate")
    );
    assert!(error_text("timezone = ").contains("(syntax)"));
}

#[test]
fn an_empty_or_multi_line_key_is_quoted_in_the_message() {
    // Found by the config_loader fuzz target (fuzz/regressions/config_loader/empty-key.toml):
    // the message read "settle.toml: : is not a known setting".
    let message = error_text(&format!("''=''\n{BASE}"));
    assert!(
        message.contains(r#""": is not a known setting"#),
        "{message}"
    );
    let message = error_text(&format!("{BASE}''=''\n"));
    assert!(
        message.contains(r#"(general)."": is not a known category setting"#),
        "{message}"
    );
    let message = error_text(&format!("\"a\\nb\" = 1\n{BASE}"));
    assert!(!message.contains('\n'), "{message}");
    assert!(message.contains(r#""a\nb""#), "{message}");
    let named = BASE.replace("name = \"general\"", "name = \"x\\ny\"");
    let named = named.replace("credit_rate = \"0.0049\"", "credit_rate = \"0.0050\"");
    let message = error_text(&named);
    assert!(
        message.contains(r#"category[1] ("x\ny").credit_rate"#),
        "{message}"
    );
}
