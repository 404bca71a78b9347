//! Scale-out: replicas share one global count through a HyperLogLog key in Redis or Valkey.
//!
//! # Design
//!
//! A unique count cannot be summed across replicas (one visitor reaches several of them), but
//! HyperLogLog sketches merge by register-wise maximum, and uniqd-core's registers are
//! byte-compatible with Redis's (`UniqueCounter::to_redis`). So each replica periodically
//! merges its registers into one shared key with Redis's own `PFMERGE`, and reads the global
//! count with `PFCOUNT`; no cluster protocol of our own.
//!
//! One background task per replica ([`RedisSync::run`]); ingest never waits on it, and never
//! touches Redis. Every `--redis-sync-interval`:
//!
//! * **Registers changed since the last successful merge** (the dense string differs from
//!   the one last sent): one transaction, `MULTI; SET <merge key> <12,304 bytes>; PFMERGE
//!   <key> <merge key>; DEL <merge key>; SET <marker> 1 PX <ttl>; PFCOUNT <key>; EXEC`.
//!   Atomic, so a temporary key never lingers and a merge is never half applied. In the
//!   exact phase the registers already describe every address, so the same string is sent.
//! * **Nothing changed**: `PEXPIRE <marker> <ttl>` and `PFCOUNT <key>`, pipelined: no write of
//!   the sketch. The marker says that the shared key holds our registers; if `PEXPIRE` finds
//!   it gone (Redis restarted without persistence, was flushed, failed over to a replica
//!   that lacks our last merge), the registers are merged again at once.
//! * **Failure or timeout** (`--redis-timeout` per round): the replica keeps counting locally,
//!   `uniqd_redis_up` drops to 0, the first failure of an outage is logged at warn, attempts
//!   back off from one interval to [`outage::MAX_BACKOFF_INTERVALS`] intervals, and the next
//!   success merges the full registers (registers only grow, so nothing counted meanwhile
//!   is lost).
//! * **Shutdown**: after ingest has drained, one last merge of anything not yet sent.
//! * **Windows, top pages and groups** ([`RedisSync::share_views`]), in the same round after
//!   the total: the window slots into one key per minute and hour and back into a mirror ring
//!   ([`windows`]), each replica's whole top-pages summary under its own key and the merge of
//!   all of them ([`pages`]), each tracked group's registers into a key per group and back
//!   the count of every registered group ([`groups`]); [`global`] hands them to the exporter,
//!   which answers them as `"scope":"global"` while Redis is up and from the local views
//!   otherwise.
//!
//! All keys of a replica share the shared key's hash slot ([`keys`]), so the transaction is
//! valid on Redis Cluster. `docs/scale-out.md` covers failure modes and sizing.

pub mod config;
pub mod global;
pub mod groups;
pub mod keys;
pub mod metrics;
pub mod outage;
pub mod pages;
pub mod status;
pub mod windows;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, RedisResult};
use tokio::time::Instant;
use uniqd_core::{UniqueCounter, Views};

use self::config::RedisConfig;
use crate::units::millis;
use global::{GlobalViews, ViewShare};
use keys::SyncKeys;
use outage::Outage;
pub use status::RedisStatus;

/// Shortest marker lifetime: a replica silent this long (stopped, or cut off from Redis) has
/// its marker expire, which only costs one extra merge when it comes back.
const MIN_MARKER_TTL: Duration = Duration::from_secs(60);

/// The sync task of one replica.
#[derive(Debug)]
pub struct RedisSync {
    client: Client,
    keys: SyncKeys,
    interval: Duration,
    timeout: Duration,
    marker_ttl_ms: u64,
    counter: Arc<UniqueCounter>,
    status: Arc<RedisStatus>,
    /// The dense string of the last successful merge; `None` forces the next round to merge.
    last_sent: Option<Vec<u8>>,
    /// The windows, top pages and groups, when shared ([`Self::share_views`]).
    views: Option<ViewShare>,
}

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Registers were merged into the shared key.
    Merged,
    /// Nothing new to send; the marker was alive.
    Unchanged,
    /// Nothing new, but the shared key had lost our registers: merged them again.
    Restored,
}

impl RedisSync {
    /// A sync task for `counter` (nothing is contacted yet: connecting is lazy, so a replica
    /// starts and ingests while Redis is down).
    ///
    /// # Errors
    ///
    /// An invalid configuration (see [`RedisConfig::validate`]).
    pub fn new(config: &RedisConfig, counter: Arc<UniqueCounter>) -> Result<Self, String> {
        let client = crate::build::redis_client(config)?;
        let replica = keys::new_replica_id();
        let keys = SyncKeys::new(&config.key, &replica)?;
        let marker_ttl = config.sync_interval.saturating_mul(10).max(MIN_MARKER_TTL);
        let status = Arc::new(RedisStatus::new(
            Arc::clone(&counter),
            config.key.clone(),
            replica,
        ));
        Ok(Self {
            client,
            keys,
            interval: config.sync_interval,
            timeout: config.timeout,
            marker_ttl_ms: millis(marker_ttl),
            counter,
            status,
            last_sent: None,
            views: None,
        })
    }

    /// Also shares the time windows, top pages and per-group counts of `views` (those that
    /// are on); returns what the exporter reads to answer them for every replica (`None` if
    /// none is on).
    pub fn share_views(&mut self, views: &Views) -> Option<Arc<GlobalViews>> {
        self.views = ViewShare::new(
            views,
            Arc::clone(&self.status),
            &self.keys.prefix,
            self.marker_ttl_ms,
        );
        self.views.as_ref().map(ViewShare::global)
    }

    /// The state the exporter reads.
    pub fn status(&self) -> Arc<RedisStatus> {
        Arc::clone(&self.status)
    }

    /// Syncs every interval until `shutdown` resolves, then makes one last attempt to merge
    /// what was not sent yet and returns.
    ///
    /// # Errors
    ///
    /// Only if the connection manager cannot be set up (no Redis contact is made here);
    /// Redis errors are handled by retrying.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), RedisError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            // Retries are this loop's job: it backs off and reports each failure.
            .set_number_of_retries(0);
        let mut conn = ConnectionManager::new_lazy_with_config(self.client.clone(), config)?;
        tracing::info!(
            redis_addr = %self.client.get_connection_info().addr(),
            key = %self.keys.shared,
            replica = %self.status.replica(),
            interval_ms = millis(self.interval),
            "sharing the count through redis"
        );
        let mut outage = Outage::default();
        let mut next = Instant::now();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep_until(next) => {}
            }
            next = Instant::now() + self.attempt(&mut conn, &mut outage).await;
        }
        // Ingest has drained: merge what the last interval counted (a no-op round if nothing
        // changed), so that the global count keeps it after this replica is gone.
        self.attempt(&mut conn, &mut outage).await;
        Ok(())
    }

    /// One round with its bookkeeping; returns the wait before the next.
    async fn attempt(&mut self, conn: &mut ConnectionManager, outage: &mut Outage) -> Duration {
        let error = match tokio::time::timeout(self.timeout, self.round(conn)).await {
            Ok(Ok(round)) => {
                let failed_attempts = outage.succeeded();
                if failed_attempts > 0 {
                    tracing::info!(
                        failed_attempts,
                        "redis is reachable again; registers merged"
                    );
                }
                if round == Round::Restored {
                    tracing::info!(
                        key = %self.keys.shared,
                        "the shared key had lost this replica's registers; merged them again"
                    );
                }
                return self.interval;
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {:?}", self.timeout),
        };
        // Whatever reached Redis, the next success merges everything again.
        self.last_sent = None;
        if let Some(views) = &mut self.views {
            views.forget();
        }
        self.status.failed();
        let retry = outage.failed(self.interval);
        if retry.first {
            tracing::warn!(
                %error,
                key = %self.keys.shared,
                "redis unavailable: counting locally, merging when it returns"
            );
        } else {
            tracing::debug!(
                %error,
                retry_in_ms = millis(retry.after),
                "redis still unavailable"
            );
        }
        retry.after
    }

    /// One sync round: merge if anything changed (or the shared key lost our registers), and
    /// read the global count.
    async fn round(&mut self, conn: &mut ConnectionManager) -> RedisResult<Round> {
        let round = self.total_round(conn).await?;
        if let Some(views) = &mut self.views {
            views.round(conn, &self.keys.merge).await?;
        }
        Ok(round)
    }

    /// The total's part of a round.
    async fn total_round(&mut self, conn: &mut ConnectionManager) -> RedisResult<Round> {
        let payload = self.counter.to_redis();
        if self.last_sent.as_deref() != Some(&payload[..]) {
            self.merge(conn, payload).await?;
            return Ok(Round::Merged);
        }
        let (marker_alive, global): (bool, u64) = redis::pipe()
            .cmd("PEXPIRE")
            .arg(&self.keys.marker)
            .arg(self.marker_ttl_ms)
            .cmd("PFCOUNT")
            .arg(&self.keys.shared)
            .query_async(conn)
            .await?;
        if marker_alive {
            self.status.synced(global);
            return Ok(Round::Unchanged);
        }
        self.merge(conn, payload).await?;
        Ok(Round::Restored)
    }

    /// The merge transaction; records the global count it reads.
    async fn merge(&mut self, conn: &mut ConnectionManager, payload: Vec<u8>) -> RedisResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        keys::push_merge(&mut pipe, &self.keys.merge, &self.keys.shared, &payload);
        let (global,): (u64,) = pipe
            .cmd("SET")
            .arg(&self.keys.marker)
            .arg(1)
            .arg("PX")
            .arg(self.marker_ttl_ms)
            .ignore()
            .cmd("PFCOUNT")
            .arg(&self.keys.shared)
            .query_async(conn)
            .await?;
        self.status.synced(global);
        self.last_sent = Some(payload);
        Ok(())
    }
}
