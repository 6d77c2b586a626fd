// Test workload for dumps: one thread, "caller", spends its life going
// in and out of the VM (two CPU-clock reads from two call sites, each a
// native call), the moments a thread's state and anchor are read apart
// or it is paused inside a native wrapper's transition. A dump must list
// it every time, under InOutVm.call.
//   java InOutVm   -> prints "ready", runs until stdin ends, exits 0.
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;

public class InOutVm {
    static volatile long sink;
    static volatile boolean stop;

    static void call(ThreadMXBean mx) {
        while (!stop) {
            sink += mx.getCurrentThreadCpuTime();
            sink += mx.getCurrentThreadUserTime();
        }
    }

    public static void main(String[] args) throws Exception {
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        Thread t = new Thread(() -> call(mx), "caller");
        t.start();
        System.out.println("ready");
        System.out.flush();
        while (System.in.read() >= 0) { }
        stop = true;
        t.join();
        System.out.println("done");
    }
}
