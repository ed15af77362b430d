//! Order records (the `orders` source of DESIGN §2) from a deterministic PRNG.

use serde_json::json;

/// splitmix64: small, fast, and the same sequence for the same seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Seeded from the clock, for the demo.
    pub fn from_time() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(42);
        Rng(nanos)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// One order, ready to serialize.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub order_id: i64,
    pub customer: String,
    pub amount: f64,
    pub status: &'static str,
    /// Epoch milliseconds (DESIGN §2 accepts them for TIMESTAMP).
    pub ts_ms: i64,
}

impl Order {
    /// An order for `customer` with a random amount (a multiple of 0.25, so sums are
    /// exact) and status (one in five cancelled).
    pub fn random(rng: &mut Rng, order_id: i64, customer: String, ts_ms: i64) -> Order {
        let status = match rng.below(5) {
            0 => "cancelled",
            1 => "shipped",
            _ => "paid",
        };
        Order {
            order_id,
            customer,
            amount: (rng.below(1000) + 1) as f64 * 0.25,
            status,
            ts_ms,
        }
    }

    pub fn counts(&self) -> bool {
        self.status != "cancelled"
    }

    pub fn json(&self) -> String {
        json!({
            "order_id": self.order_id,
            "customer": self.customer,
            "amount": self.amount,
            "status": self.status,
            "ts": self.ts_ms,
        })
        .to_string()
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The `orders` source over `topic` (DESIGN §2).
pub fn create_orders_source(name: &str, topic: &str) -> String {
    format!(
        "CREATE SOURCE {name} (order_id BIGINT, customer TEXT, amount DOUBLE PRECISION, \
         status TEXT, ts TIMESTAMP) WITH (topic = '{topic}', format = 'json', start = 'earliest')"
    )
}

/// The `revenue` view (DESIGN §2) over `source`.
pub fn create_revenue_view(name: &str, source: &str, partitions: u32) -> String {
    format!(
        "CREATE MATERIALIZED VIEW {name} WITH (partitions = {partitions}) AS \
         SELECT customer, COUNT(*) AS orders, SUM(amount) AS total, \
         AVG(amount) AS avg_amount, MIN(amount) AS smallest, MAX(amount) AS largest \
         FROM {source} WHERE status <> 'cancelled' GROUP BY customer"
    )
}
