// Test workload for the JVM sampler: the main thread spends nearly all of
// its time in a JNI native method (java.util.zip.Deflater's, which runs
// zlib in libzip/libz without calling back into the VM).
//   java Deflate SECONDS -> prints "ready", then "done", exits 0.
import java.util.Random;
import java.util.zip.Deflater;

public class Deflate {
    static volatile long sink;

    static long squeeze(Deflater d, byte[] in, byte[] out) {
        d.reset();
        d.setInput(in);
        d.finish();
        long n = 0;
        while (!d.finished())
            n += d.deflate(out);
        return n;
    }

    public static void main(String[] args) {
        double seconds = args.length > 0 ? Double.parseDouble(args[0]) : 5;
        byte[] in = new byte[1 << 20];
        Random r = new Random(7);
        // compressible but not trivially: small alphabet, random order
        for (int i = 0; i < in.length; i++)
            in[i] = (byte) ('a' + r.nextInt(12));
        byte[] out = new byte[1 << 16];
        Deflater d = new Deflater(9);
        for (int i = 0; i < 3; i++)
            sink += squeeze(d, in, out);
        System.out.println("ready");
        System.out.flush();
        long end = System.nanoTime() + (long) (seconds * 1e9);
        while (System.nanoTime() < end)
            sink += squeeze(d, in, out);
        System.out.println("done");
    }
}
