//! Partition choice compatible with the Java client's default partitioner, so that keyed
//! records land where every other Kafka client expects: `toPositive(murmur2(key)) % n`.
//! Keyless records are spread round-robin.

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), seed 0x9747b28c.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let seed: u32 = 0x9747_b28c;
    let len = data.len();
    let mut h: u32 = seed ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition for `key` among `partitions`, as the Java default partitioner computes it.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    Partitioner::default().partition(Some(key), partitions)
}

#[derive(Debug, Default)]
pub struct Partitioner {
    next: u32,
}

impl Partitioner {
    pub fn partition(&mut self, key: Option<&[u8]>, partitions: i32) -> i32 {
        self.partition_hashed(key.map(murmur2), partitions)
    }

    /// As [`Self::partition`], for a key whose murmur2 is already known.
    pub fn partition_hashed(&mut self, key_hash: Option<i32>, partitions: i32) -> i32 {
        match key_hash {
            Some(h) => ((h & 0x7fff_ffff) as i64 % partitions as i64) as i32,
            None => {
                self.next = self.next.wrapping_add(1);
                (self.next % partitions as u32) as i32
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values of Kafka's own UtilsTest.testMurmur2.
    #[test]
    fn matches_kafka_utils_test() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (input, want) in cases {
            assert_eq!(murmur2(input), *want, "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn keyless_spreads_evenly() {
        let mut p = Partitioner::default();
        let mut counts = [0; 3];
        for _ in 0..300 {
            counts[p.partition(None, 3) as usize] += 1;
        }
        assert_eq!(counts, [100, 100, 100]);
    }
}
