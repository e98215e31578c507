//! Rx-queue placement: which PMD polls each rx queue of a port. Each queue goes to the PMD
//! polling the fewest queues so far (the lowest-numbered on a tie); queues stay where they are placed until their port is deleted.

/// How many rx queues each PMD polls, by PMD index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct RxqLoad(Vec<usize>);

impl RxqLoad {
    /// No queue on any of `pmds` PMDs.
    pub(super) fn new(pmds: usize) -> RxqLoad {
        RxqLoad(vec![0; pmds])
    }

    /// Places `queues` rx queues, in order: the PMD of each, and the load with them placed
    /// (for the caller to keep once the port is added; `self` is left as it was).
    pub(super) fn place(&self, queues: usize) -> (Vec<usize>, RxqLoad) {
        let mut load = self.clone();
        let pmds = (0..queues)
            .map(|_| {
                let l = &mut load.0;
                let pmd = (0..l.len()).min_by_key(|&i| (l[i], i)).unwrap_or(0);
                l[pmd] += 1;
                pmd
            })
            .collect();
        (pmds, load)
    }

    /// Takes away the queues a deleted port had on `pmds` (as [`RxqLoad::place`] gave them).
    pub(super) fn release(&mut self, pmds: &[usize]) {
        for &pmd in pmds {
            self.0[pmd] -= 1;
        }
    }
}

#[cfg(test)]
mod test {
    use super::RxqLoad;

    #[test]
    fn queues_go_to_the_least_loaded_pmd_then_the_lowest_numbered() {
        let load = RxqLoad::new(3);
        let (a, load) = load.place(2);
        assert_eq!(a, [0, 1]);
        let (b, mut load) = load.place(4);
        assert_eq!(b, [2, 0, 1, 2]);
        assert_eq!(load, RxqLoad(vec![2, 2, 2]));
        load.release(&a);
        let (c, _) = load.place(3);
        assert_eq!(c, [0, 1, 0]);
    }

    #[test]
    fn placing_leaves_the_load_as_it_was() {
        let load = RxqLoad::new(2);
        let (_, after) = load.place(3);
        assert_eq!(load, RxqLoad::new(2));
        assert_eq!(after, RxqLoad(vec![2, 1]));
    }
}
