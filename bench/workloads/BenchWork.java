// JVM workload for bench/run.py.
//   java BenchWork fixed UNITS [LINGER]  fixed CPU work on two threads, then
//                                  one JSON line with its own wall time for it
//                                  (then LINGER s idle, for a profiler to stop)
//   java BenchWork hold SECONDS    keeps ~200k objects of a few classes live
//                                  and works for SECONDS (heap summary cost)
// Both print "ready" once warmed up, so a profiler can attach to steady state.
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

public class BenchWork {
    static volatile long sink;

    static final class Node {
        final long id;
        final String label;
        Node next;
        Node(long id, String label) { this.id = id; this.label = label; }
    }

    static long mix(long x) {
        x ^= x << 13; x ^= x >>> 7; x ^= x << 17;
        return x;
    }

    static long crunch(int n) {
        long x = 88172645463325252L;
        for (int i = 0; i < n; i++)
            x = mix(x) + i;
        return x;
    }

    static int tally(int n) {
        Map<Integer, Integer> m = new HashMap<>();
        for (int i = 0; i < n; i++)
            m.merge(i % 1024, 1, Integer::sum);
        return m.size();
    }

    static void unit() {
        sink += crunch(200_000);
        sink += tally(20_000);
    }

    static void fixed(int units) throws Exception {
        for (int i = 0; i < 200; i++)
            unit();
        System.out.println("ready");
        System.out.flush();
        long t0 = System.nanoTime();
        Thread other = new Thread(() -> { for (int i = 0; i < units / 2; i++) unit(); }, "worker");
        other.start();
        for (int i = 0; i < units - units / 2; i++)
            unit();
        other.join();
        double wall = (System.nanoTime() - t0) / 1e9;
        System.out.println("{\"mode\": \"fixed\", \"units\": " + units + ", \"wall_s\": " + wall + "}");
        System.out.flush();
    }

    static void hold(double seconds) {
        List<Object> keep = new ArrayList<>();
        for (int i = 0; i < 100_000; i++) {
            keep.add(new Node(i, "n" + i));
            keep.add(new long[8]);
        }
        System.out.println("ready");
        System.out.flush();
        long end = System.nanoTime() + (long)(seconds * 1e9);
        while (System.nanoTime() < end)
            unit();
        sink += keep.size();
        System.out.println("{\"mode\": \"hold\"}");
    }

    public static void main(String[] args) throws Exception {
        if (args[0].equals("fixed")) {
            fixed(Integer.parseInt(args[1]));
            if (args.length > 2)
                Thread.sleep((long) (Double.parseDouble(args[2]) * 1000));
        }
        else
            hold(Double.parseDouble(args[1]));
    }
}
