//! The statuses and kinds of the master tables as Rust enums. Each one
//! matches its column's CHECK constraint (`tests/it/store_enums.rs`
//! compares them with the live schema) and is stored as its snake_case
//! text, so rows, JSON and the API read the same words.

/// An enum stored as text: `as_str`, `parse`, `ALL`, serde and sqlx.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl sqlx::Type<sqlx::Postgres> for $name {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <str as sqlx::Type<sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl sqlx::Encode<'_, sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.as_str(), buf)
            }
        }

        impl sqlx::Decode<'_, sqlx::Postgres> for $name {
            fn decode(value: sqlx::postgres::PgValueRef<'_>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
                $name::parse(text).ok_or_else(|| {
                    format!(concat!("unknown ", stringify!($name), " {:?}"), text).into()
                })
            }
        }
    };
}

text_enum!(
    /// `workflow_runs.kind`.
    RunKind {
        Provision = "provision",
        DeprovisionSoft = "deprovision_soft",
        DeprovisionHard = "deprovision_hard",
    }
);

text_enum!(
    /// `workflow_runs.status`.
    RunStatus {
        Running = "running",
        Completed = "completed",
        Failed = "failed",
        Cancelled = "cancelled",
        Compensating = "compensating",
        Compensated = "compensated",
        CompensationFailed = "compensation_failed",
    }
);

impl RunStatus {
    /// No worker moves a run out of these on its own.
    pub fn is_finished(self) -> bool {
        !matches!(self, RunStatus::Running | RunStatus::Compensating)
    }
}

text_enum!(
    /// `workflow_steps.status`.
    StepStatus {
        Pending = "pending",
        Running = "running",
        Retrying = "retrying",
        Completed = "completed",
        Failed = "failed",
        Skipped = "skipped",
        Compensating = "compensating",
        Compensated = "compensated",
        // An executor accepted the work and reports its end by callback.
        Awaiting = "awaiting",
    }
);

impl StepStatus {
    /// A forward attempt may claim the step.
    pub fn is_runnable(self) -> bool {
        matches!(
            self,
            StepStatus::Pending | StepStatus::Running | StepStatus::Retrying
        )
    }

    /// The run has gone past the step.
    pub fn is_done(self) -> bool {
        matches!(self, StepStatus::Completed | StepStatus::Skipped)
    }
}

text_enum!(
    /// `tenants.status`.
    TenantStatus {
        PendingProvision = "pending_provision",
        Provisioning = "provisioning",
        Active = "active",
        Suspended = "suspended",
        Deleting = "deleting",
        Deleted = "deleted",
    }
);

text_enum!(
    /// `tenant_provision_logs.status`.
    LogStatus {
        Success = "success",
        Error = "error",
        Retrying = "retrying",
        Skipped = "skipped",
        Compensated = "compensated",
        Cancelled = "cancelled",
        Requested = "requested",
        Waiting = "waiting",
    }
);

text_enum!(
    /// `event_deliveries.status`.
    DeliveryStatus {
        Pending = "pending",
        Retrying = "retrying",
        Delivered = "delivered",
        Failed = "failed",
        Skipped = "skipped",
    }
);

text_enum!(
    /// `event_deliveries.channel`.
    Channel {
        Webhook = "webhook",
        Novu = "novu",
    }
);

text_enum!(
    /// `tenant_connections.service`.
    Service {
        Postgres = "postgres",
        Mongodb = "mongodb",
        Qdrant = "qdrant",
    }
);

/// Every enum with the `table.column` whose CHECK constraint it mirrors.
pub fn checked_columns() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    fn texts<T: Copy>(all: &[T], f: fn(T) -> &'static str) -> Vec<&'static str> {
        all.iter().map(|v| f(*v)).collect()
    }
    vec![
        (
            "workflow_runs",
            "kind",
            texts(RunKind::ALL, RunKind::as_str),
        ),
        (
            "workflow_runs",
            "status",
            texts(RunStatus::ALL, RunStatus::as_str),
        ),
        (
            "workflow_steps",
            "status",
            texts(StepStatus::ALL, StepStatus::as_str),
        ),
        (
            "tenants",
            "status",
            texts(TenantStatus::ALL, TenantStatus::as_str),
        ),
        (
            "tenant_provision_logs",
            "status",
            texts(LogStatus::ALL, LogStatus::as_str),
        ),
        (
            "event_deliveries",
            "status",
            texts(DeliveryStatus::ALL, DeliveryStatus::as_str),
        ),
        (
            "event_deliveries",
            "channel",
            texts(Channel::ALL, Channel::as_str),
        ),
        (
            "tenant_connections",
            "service",
            texts(Service::ALL, Service::as_str),
        ),
    ]
}
