// Test workload for the JVM walker: leaf() is small and hot, so C2 inlines
// it into caller(), where nearly all the time goes; a walker that reads
// only the nmethod's own method would show caller() alone.
//   java -XX:+UnlockDiagnosticVMOptions -XX:+PrintInlining Inline SECONDS
//     -> the JIT's inlining decisions, "ready", then "done", exits 0.
public class Inline {
    static volatile long sink;

    static long leaf(long x) {
        long y = x;
        for (int i = 0; i < 64; i++) {
            y = y * 6364136223846793005L + i;
            y ^= y >>> 17;
        }
        return y;
    }

    static void caller() {
        long s = 0;
        for (int i = 0; i < 20_000; i++)
            s += leaf(s + i);
        sink += s;
    }

    public static void main(String[] args) {
        double seconds = Double.parseDouble(args[0]);
        for (int i = 0; i < 200; i++)
            caller();
        System.out.println("ready");
        System.out.flush();
        long end = System.nanoTime() + (long) (seconds * 1e9);
        while (System.nanoTime() < end)
            caller();
        System.out.println("done");
    }
}
