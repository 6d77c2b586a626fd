// Test workload for the JVM sampler: one thread splits its CPU time between
// alpha() and beta() (about 3:1) and measures the split itself with
// ThreadMXBean; one thread is BLOCKED on a monitor in blockedHere(), one
// WAITING in waitHere(), one WAITING under DEEP frames of deep(); KEEP
// instances of Split$Marker stay reachable.
//   java Split SECONDS  -> prints "ready", then "split alpha=NS beta=NS",
//                          "markers N" and "done", exits 0.
//   java Split stdin    -> the same, the split running until stdin ends (a
//                          test closes it when done: a fixed time raced the
//                          profiler on a loaded machine, and main had ended).
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;

public class Split {
    static final int KEEP = 12345;
    static final int BATCH = 100;
    static final Object LOCK = new Object();
    static final Object WAIT = new Object();
    static volatile long sink;
    static Marker[] markers;
    static volatile boolean stop;

    static final class Marker {
        final int id;
        Marker(int id) { this.id = id; }
    }

    static long spin(long n, long seed) {
        long x = seed;
        for (long i = 0; i < n; i++) {
            x = x * 6364136223846793005L + 1442695040888963407L;
            x ^= x >>> 29;
        }
        return x;
    }

    static void alpha() { sink += spin(300_000, sink); }

    static void beta() { sink += spin(100_000, sink + 1); }

    static void blockedHere() {
        synchronized (LOCK) {
            sink++;
        }
    }

    static void waitHere() throws InterruptedException {
        synchronized (WAIT) {
            while (true)
                WAIT.wait();
        }
    }

    static final java.util.concurrent.CountDownLatch HELD = new java.util.concurrent.CountDownLatch(1);

    static final int DEEP = 1000;
    static final Object DEEP_WAIT = new Object();

    // DEEP frames of deep() under run(), then waits for good
    static void deep(int n) throws InterruptedException {
        if (n > 1) {
            deep(n - 1);
            return;
        }
        synchronized (DEEP_WAIT) {
            while (true)
                DEEP_WAIT.wait();
        }
    }

    static void holdLock() throws InterruptedException {
        synchronized (LOCK) {
            HELD.countDown();
            Thread.sleep(Long.MAX_VALUE);
        }
    }

    static Thread daemon(String name, Runnable r) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        t.start();
        return t;
    }

    public static void main(String[] args) throws Exception {
        boolean untilEof = args.length > 0 && args[0].equals("stdin");
        double seconds = untilEof ? 0 : args.length > 0 ? Double.parseDouble(args[0]) : 5;
        markers = new Marker[KEEP];
        for (int i = 0; i < KEEP; i++)
            markers[i] = new Marker(i);

        daemon("holder", () -> {
            try { holdLock(); } catch (InterruptedException e) { }
        });
        HELD.await(); // the holder owns LOCK from here on
        daemon("blocked", Split::blockedHere);
        daemon("waiter", () -> {
            try { waitHere(); } catch (InterruptedException e) { }
        });
        daemon("deep", () -> {
            try { deep(DEEP); } catch (InterruptedException e) { }
        });

        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        long alphaNs = 0, betaNs = 0;
        // warm up so both methods are compiled before the clock starts
        for (int i = 0; i < 50; i++) { alpha(); beta(); }
        System.out.println("ready");
        System.out.flush();
        if (untilEof)
            daemon("stdin", () -> {
                try {
                    while (System.in.read() >= 0) { }
                } catch (java.io.IOException e) { }
                stop = true;
            });
        long end = System.nanoTime() + (long) (seconds * 1e9);
        // A hundred calls between clock reads: reading a thread's CPU clock
        // costs a lot on a loaded machine (measured here: half the loop with
        // one call per read, a fifth with ten), and that cost lands in both
        // shares alike and pulls the truth towards one half. With 100 the
        // clock is ~2% of samples and the truth agreed with the profile to
        // 0.1 point (0.7502 vs 0.7505).
        while (untilEof ? !stop : System.nanoTime() < end) {
            long t0 = mx.getCurrentThreadCpuTime();
            for (int i = 0; i < BATCH; i++)
                alpha();
            long t1 = mx.getCurrentThreadCpuTime();
            for (int i = 0; i < BATCH; i++)
                beta();
            long t2 = mx.getCurrentThreadCpuTime();
            alphaNs += t1 - t0;
            betaNs += t2 - t1;
        }
        System.out.println("split alpha=" + alphaNs + " beta=" + betaNs);
        System.out.println("markers " + markers.length);
        System.out.println("done");
    }
}
