// A small Java program to profile with cgprof: two worker threads that each
// count primes and hash words in turn, while main sleeps, then one line of
// throughput (used to measure what sampling costs the program).
//   javac -d /tmp/demo examples/java/Demo.java
//   cgprof run -o demo-java.svg -- java -cp /tmp/demo Demo 10
// (Demo SECONDS [SKIP]: the throughput line counts from SKIP seconds on.)
// Its profile: under Demo.work, Demo.countPrimes -> Demo.isPrime takes about
// two thirds of the samples and Demo.hashWords (SHA-256) the rest; with
// --idle, main shows up TIMED_WAITING in Thread.sleep.
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.concurrent.atomic.AtomicLong;

public class Demo {
    static final AtomicLong rounds = new AtomicLong();
    static volatile boolean stop;
    static volatile long sink;

    static boolean isPrime(long n) {
        if (n < 2)
            return false;
        for (long d = 2; d * d <= n; d++)
            if (n % d == 0)
                return false;
        return true;
    }

    static int countPrimes(long from, long to) {
        int found = 0;
        for (long n = from; n < to; n++)
            if (isPrime(n))
                found++;
        return found;
    }

    static byte[] hashWords(MessageDigest md, int words) {
        byte[] out = null;
        for (int i = 0; i < words; i++) {
            md.update(("word-" + i).getBytes(StandardCharsets.UTF_8));
            out = md.digest();
        }
        return out;
    }

    static void work() {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            while (!stop) {
                sink += countPrimes(1_000_000, 1_003_000);
                sink += hashWords(md, 4_000)[0];
                rounds.incrementAndGet();
            }
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    public static void main(String[] args) throws Exception {
        double seconds = args.length > 0 ? Double.parseDouble(args[0]) : 10;
        Thread a = new Thread(Demo::work, "worker-1");
        Thread b = new Thread(Demo::work, "worker-2");
        double skip = args.length > 1 ? Double.parseDouble(args[1]) : 0;
        a.start();
        b.start();
        Thread.sleep((long) (skip * 1000));
        long r0 = rounds.get(), t0 = System.nanoTime();
        Thread.sleep((long) ((seconds - skip) * 1000));
        long n = rounds.get() - r0;
        double s = (System.nanoTime() - t0) / 1e9;
        stop = true;
        a.join();
        b.join();
        System.out.printf("%d rounds in %.2f s: %.1f rounds/s%n", n, s, n / s);
    }
}
