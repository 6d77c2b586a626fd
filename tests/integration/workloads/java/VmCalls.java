// Test workload for the JVM sampler: the main thread spends nearly all of
// its time inside the VM, in ThreadMXBean.getCurrentThreadCpuTime (a call
// into the JVM and a clock_gettime system call), not in Java code.
//   java VmCalls SECONDS -> prints "ready", then "done", exits 0.
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;

public class VmCalls {
    static volatile long sink;

    public static void main(String[] args) {
        double seconds = args.length > 0 ? Double.parseDouble(args[0]) : 5;
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        // compiled before the clock starts
        for (int i = 0; i < 100_000; i++)
            sink += mx.getCurrentThreadCpuTime();
        System.out.println("ready");
        System.out.flush();
        long end = System.nanoTime() + (long) (seconds * 1e9);
        while (System.nanoTime() < end)
            for (int i = 0; i < 1000; i++)
                sink += mx.getCurrentThreadCpuTime();
        System.out.println("done");
    }
}
