fn main() {
    let k: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20000);
    let shape = std::env::args().nth(2).unwrap_or("flat".into());
    let text: String = (0..k)
        .map(|i| match shape.as_str() {
            "head" => format!("p(x) :- q{i}(x)\n"),
            "chain" => format!("r{i}(x) :- r{}(x)\n", i + 1),
            _ => format!("p{i}(x) :- q{i}(x), not s{i}(x)\n"),
        })
        .collect();
    let mut e = congress_engine::Engine::with_default_policies();
    let t0 = std::time::Instant::now();
    let mut tx = e.transaction();
    tx.report_rows(false).insert_rules("classification", &text);
    tx.commit().unwrap();
    eprintln!("{:?}", t0.elapsed());
    drop(text);
    std::thread::sleep(std::time::Duration::from_millis(10));
    std::hint::black_box(&e);
}
