//! Realistic line items for generated samples: many accounts and services,
//! RI and Savings Plans line types, tags. Money is generated as integers of
//! 1e-10 USD, so what was written is known exactly.

use crate::money::Money;

pub struct Service {
    pub code: &'static str,
    pub name: &'static str,
    pub family: &'static str,
    pub usage: &'static [(&'static str, &'static str, &'static str)],
}

pub const SERVICES: &[Service] = &[
    Service {
        code: "AmazonEC2",
        name: "Amazon Elastic Compute Cloud",
        family: "Compute Instance",
        usage: &[
            ("BoxUsage:m5.large", "RunInstances", "Hrs"),
            ("BoxUsage:t3.micro", "RunInstances", "Hrs"),
            ("EBS:VolumeUsage.gp3", "CreateVolume-Gp3", "GB-Mo"),
        ],
    },
    Service {
        code: "AmazonS3",
        name: "Amazon Simple Storage Service",
        family: "Storage",
        usage: &[
            ("TimedStorage-ByteHrs", "StandardStorage", "GB-Mo"),
            ("Requests-Tier1", "PutObject", "Requests"),
        ],
    },
    Service {
        code: "AmazonRDS",
        name: "Amazon Relational Database Service",
        family: "Database Instance",
        usage: &[("InstanceUsage:db.r5.large", "CreateDBInstance:0014", "Hrs")],
    },
    Service {
        code: "AWSLambda",
        name: "AWS Lambda",
        family: "Serverless",
        usage: &[
            ("Lambda-GB-Second", "Invoke", "Lambda-GB-Second"),
            ("Request", "Invoke", "Requests"),
        ],
    },
    Service {
        code: "AmazonDynamoDB",
        name: "Amazon DynamoDB",
        family: "Amazon DynamoDB PayPerRequest Throughput",
        usage: &[("ReadRequestUnits", "GetItem", "ReadRequestUnits")],
    },
    Service {
        code: "AmazonCloudFront",
        name: "Amazon CloudFront",
        family: "Data Transfer",
        usage: &[("DataTransfer-Out-Bytes", "GET", "GB")],
    },
    Service {
        code: "AWSQueueService",
        name: "Amazon Simple Queue Service",
        family: "API Request",
        usage: &[("Requests-Tier1", "GetQueueAttributes", "Requests")],
    },
    Service {
        code: "AmazonSNS",
        name: "Amazon Simple Notification Service",
        family: "API Request",
        usage: &[("Requests-Tier1", "Publish", "Requests")],
    },
    Service {
        code: "AmazonCloudWatch",
        name: "AmazonCloudWatch",
        family: "Metric",
        usage: &[("CW:MetricMonitorUsage", "MetricStorage", "Metrics")],
    },
    Service {
        code: "AWSDataTransfer",
        name: "AWS Data Transfer",
        family: "Data Transfer",
        usage: &[("DataTransfer-Regional-Bytes", "InterZone-In", "GB")],
    },
    Service {
        code: "AmazonEKS",
        name: "Amazon Elastic Container Service for Kubernetes",
        family: "Compute",
        usage: &[("AmazonEKS-Hours:perCluster", "CreateOperation", "Hours")],
    },
    Service {
        code: "AmazonElastiCache",
        name: "Amazon ElastiCache",
        family: "Cache Instance",
        usage: &[(
            "NodeUsage:cache.r6g.large",
            "CreateCacheCluster:0002",
            "Hrs",
        )],
    },
    Service {
        code: "AmazonRoute53",
        name: "Amazon Route 53",
        family: "DNS Zone",
        usage: &[("HostedZone", "HostedZone", "HostedZone")],
    },
    Service {
        code: "awskms",
        name: "AWS Key Management Service",
        family: "Encryption Key",
        usage: &[("KMS-Keys", "CreateKey", "Keys")],
    },
    Service {
        code: "AmazonVPC",
        name: "Amazon Virtual Private Cloud",
        family: "VpcEndpoint",
        usage: &[("VpcEndpoint-Hours", "VpcEndpoint", "Hrs")],
    },
    Service {
        code: "AmazonGuardDuty",
        name: "Amazon GuardDuty",
        family: "Security Services",
        usage: &[("PaidEventsAnalyzed", "None", "Events")],
    },
];

pub const REGIONS: &[(&str, &str)] = &[
    ("us-east-1", "US East (N. Virginia)"),
    ("us-west-2", "US West (Oregon)"),
    ("eu-west-1", "EU (Ireland)"),
    ("eu-central-1", "EU (Frankfurt)"),
    ("ap-southeast-2", "Asia Pacific (Sydney)"),
];

/// One generated line item, with every money value as 1e-10 units.
pub struct GenRow {
    pub account: usize,
    pub service: usize,
    pub usage: usize,
    /// 0: the service's usage type as listed; n > 0: its n-th size/tier
    /// variant ([`usage_type`]), for high-cardinality months.
    pub variant: u16,
    pub region: usize,
    pub day: u32,
    pub hour: u32,
    pub line_item_type: &'static str,
    pub product_code: &'static str,
    pub usage_amount: i64,
    pub unblended: i64,
    pub net_unblended: i64,
    pub blended: i64,
    pub public_on_demand: i64,
    pub ri_effective: i64,
    pub ri_unused_upfront: i64,
    pub ri_unused_recurring: i64,
    /// `reservation/UnusedQuantity` (RIFee rows): unused hours, 1e-10 units.
    pub ri_unused_quantity: i64,
    pub sp_effective: i64,
    pub sp_total_commitment: i64,
    pub sp_used_commitment: i64,
    pub reservation_arn: bool,
    pub sp_arn: bool,
    pub id: u64,
}

impl GenRow {
    /// The CUDOS amortized cost of this row, as the generator intends it.
    pub fn amortized(&self) -> i64 {
        match self.line_item_type {
            "SavingsPlanCoveredUsage" => self.sp_effective,
            "SavingsPlanRecurringFee" => self.sp_total_commitment - self.sp_used_commitment,
            "SavingsPlanNegation" | "SavingsPlanUpfrontFee" => 0,
            "DiscountedUsage" => self.ri_effective,
            "RIFee" => self.ri_unused_upfront + self.ri_unused_recurring,
            "Fee" if self.reservation_arn => 0,
            "Refund" if self.product_code == "ComputeSavingsPlans" => 0,
            _ => self.unblended,
        }
    }
}

/// Format 1e-10 units as a decimal string with 10 places.
pub fn units_str(units: i64, out: &mut String) {
    use std::fmt::Write;
    let sign = if units < 0 { "-" } else { "" };
    let a = units.unsigned_abs();
    let _ = write!(
        out,
        "{sign}{}.{:010}",
        a / 10_000_000_000,
        a % 10_000_000_000
    );
}

/// Size/tier variants of a usage type (`BoxUsage:m5.large` -> `BoxUsage:c6g.2xlarge`).
const FAMILIES: &[&str] = &[
    "m5", "m6i", "m6g", "m7g", "c5", "c6i", "c6g", "c7g", "r5", "r6i", "r6g", "t3", "t4g", "i3",
    "x2idn", "g5",
];
const SIZES: &[&str] = &[
    "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge",
];
const TIERS: &[&str] = &["Tier1", "Tier2", "Tier3", "IA", "GIR", "Std", "Opt", "Ext"];

/// The usage type of `g` (without the region prefix): the listed one, or a
/// variant of it when `g.variant > 0`.
pub fn usage_type(g: &GenRow, out: &mut String) {
    use std::fmt::Write;
    let base = SERVICES[g.service].usage[g.usage].0;
    let v = usize::from(g.variant);
    if v == 0 {
        out.push_str(base);
        return;
    }
    match base.split_once(':') {
        Some((head, _)) => {
            let family = FAMILIES[(v - 1) % FAMILIES.len()];
            let size = SIZES[(v - 1) / FAMILIES.len() % SIZES.len()];
            let _ = write!(out, "{head}:{family}.{size}");
        }
        None => {
            let _ = write!(out, "{base}-{}", TIERS[(v - 1) % TIERS.len()]);
            if v > TIERS.len() {
                let _ = write!(out, "{}", (v - 1) / TIERS.len());
            }
        }
    }
}

/// How many distinct values the grouping columns of a sample take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    /// 40 accounts, a few services each, 21 usage types: about 17k groups in 2 M rows.
    Low,
    /// 60 accounts, ten to twenty services each in one to three regions, each
    /// usage type in up to 22 sizes/tiers (about 600 distinct usage types),
    /// hourly items, 64k resource ids: about 600k groups in 2 M rows.
    High,
}

impl Cardinality {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "low" => Some(Self::Low),
            "high" => Some(Self::High),
            _ => None,
        }
    }

    /// Distinct resource ids per account and service.
    pub fn resources(self) -> u64 {
        match self {
            Self::Low => 4096,
            Self::High => 65_536,
        }
    }
}

pub fn units_money(units: i64) -> Money {
    Money::from_i128_with_scale(i128::from(units), 10)
}

pub struct RowGen {
    rng: fastrand::Rng,
    pub cardinality: Cardinality,
    pub accounts: Vec<String>,
    /// Per account, the (service, region) pairs it uses: a few services in one or two regions.
    profiles: Vec<Vec<(usize, usize)>>,
    pub payer: String,
    pub days: u32,
    next_id: u64,
}

const TYPES: &[(&str, u32)] = &[
    ("Usage", 780),
    ("DiscountedUsage", 50),
    ("SavingsPlanCoveredUsage", 50),
    ("SavingsPlanNegation", 30),
    ("Tax", 20),
    ("RIFee", 10),
    ("SavingsPlanRecurringFee", 10),
    ("Fee", 10),
    ("Credit", 15),
    ("Refund", 10),
    ("EdpDiscount", 15),
];

impl RowGen {
    pub fn new(seed: u64, days: u32, cardinality: Cardinality) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let high = cardinality == Cardinality::High;
        let accounts: Vec<String> = (0..if high { 60 } else { 40 })
            .map(|_| format!("{:012}", rng.u64(100_000_000_000..999_999_999_999)))
            .collect();
        let payer = accounts[0].clone();
        let profiles = (0..accounts.len())
            .map(|_| {
                let home = rng.usize(0..REGIONS.len());
                let second = rng.usize(0..REGIONS.len());
                let third = rng.usize(0..REGIONS.len());
                let services = if high {
                    rng.usize(10..21)
                } else {
                    rng.usize(3..9)
                };
                (0..services)
                    .map(|_| {
                        let region = match rng.u8(0..8) {
                            0 | 1 => second,
                            2 if high => third,
                            _ => home,
                        };
                        (rng.usize(0..SERVICES.len()), region)
                    })
                    .collect()
            })
            .collect();
        RowGen {
            rng,
            cardinality,
            accounts,
            profiles,
            payer,
            days,
            next_id: seed.wrapping_mul(0x9e37_79b9),
        }
    }

    fn pick_type(&mut self) -> &'static str {
        let total: u32 = TYPES.iter().map(|t| t.1).sum();
        let mut x = self.rng.u32(0..total);
        for (t, w) in TYPES {
            if x < *w {
                return t;
            }
            x -= w;
        }
        "Usage"
    }

    pub fn next_row(&mut self) -> GenRow {
        let r = &mut self.rng;
        // A skewed account distribution: a few big spenders, a long tail.
        let skew = match self.cardinality {
            Cardinality::Low => r.f64().powi(2),
            Cardinality::High => r.f64().powf(1.3),
        };
        let account = (skew * self.accounts.len() as f64) as usize;
        let profile = &self.profiles[account];
        let (service, region) = profile[r.usize(0..profile.len())];
        let usage = r.usize(0..SERVICES[service].usage.len());
        let variant = match self.cardinality {
            Cardinality::Low => 0,
            Cardinality::High => r.u16(0..22),
        };
        let mut day = r.u32(0..self.days);
        let mut hour = r.u32(0..24);
        let usage_amount = r.i64(1..50_000_000_000);
        let cost = r.i64(1..20_000_000_000);
        let mut t = self.pick_type();
        // Commitments apply to the services that have them; monthly charges are dated the 1st.
        let code = SERVICES[service].code;
        if t == "DiscountedUsage"
            && !matches!(code, "AmazonEC2" | "AmazonRDS" | "AmazonElastiCache")
            || matches!(t, "SavingsPlanCoveredUsage" | "SavingsPlanNegation")
                && !matches!(code, "AmazonEC2" | "AWSLambda" | "AmazonEKS")
        {
            t = "Usage";
        }
        if matches!(
            t,
            "Tax"
                | "RIFee"
                | "SavingsPlanRecurringFee"
                | "Fee"
                | "Credit"
                | "Refund"
                | "EdpDiscount"
        ) {
            day = 0;
            hour = 0;
        }
        self.next_id += 1;
        let mut g = GenRow {
            account,
            service,
            usage,
            variant,
            region,
            day,
            hour,
            line_item_type: t,
            product_code: SERVICES[service].code,
            usage_amount,
            unblended: cost,
            net_unblended: cost - cost / 20,
            blended: cost - cost / 50,
            public_on_demand: cost + cost / 10,
            ri_effective: 0,
            ri_unused_upfront: 0,
            ri_unused_recurring: 0,
            ri_unused_quantity: 0,
            sp_effective: 0,
            sp_total_commitment: 0,
            sp_used_commitment: 0,
            reservation_arn: false,
            sp_arn: false,
            id: self.next_id,
        };
        let r = &mut self.rng;
        match t {
            "DiscountedUsage" => {
                g.unblended = 0;
                g.net_unblended = 0;
                g.ri_effective = cost * 6 / 10;
                g.reservation_arn = true;
            }
            "SavingsPlanCoveredUsage" => {
                g.sp_effective = cost * 7 / 10;
                g.sp_arn = true;
            }
            "SavingsPlanNegation" => {
                g.unblended = -cost;
                g.net_unblended = -cost;
                g.blended = -cost;
                g.sp_arn = true;
            }
            "RIFee" => {
                g.ri_unused_upfront = r.i64(0..cost);
                g.ri_unused_recurring = r.i64(0..cost);
                g.ri_unused_quantity = usage_amount / 4;
                g.reservation_arn = true;
                g.public_on_demand = 0;
            }
            "SavingsPlanRecurringFee" => {
                g.product_code = "ComputeSavingsPlans";
                g.sp_total_commitment = cost;
                g.sp_used_commitment = r.i64(0..cost);
                g.sp_arn = true;
                g.public_on_demand = 0;
            }
            "Fee" => {
                g.reservation_arn = r.bool();
                g.public_on_demand = 0;
            }
            "Credit" | "Refund" | "EdpDiscount" => {
                g.unblended = -cost / 3;
                g.net_unblended = -cost / 3;
                g.blended = -cost / 3;
                g.public_on_demand = 0;
                if t == "Refund" && r.bool() {
                    g.product_code = "ComputeSavingsPlans";
                }
            }
            "Tax" => {
                g.unblended = cost / 10;
                g.net_unblended = cost / 10;
                g.blended = cost / 10;
                g.public_on_demand = 0;
                g.usage_amount = 10_000_000_000;
            }
            _ => {}
        }
        g
    }
}
