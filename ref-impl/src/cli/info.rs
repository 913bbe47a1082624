//! `midpoint-train info [--json]`

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Report a network instead (parameter count and configuration): ddpmpp, ddpmpp-noaug or
    /// tiny.
    #[arg(long)]
    arch: Option<String>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if let Some(name) = &a.arch {
        return super::arch::print(name, a.json);
    }
    let info = midpoint_train::device::info();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!("device           {}", info.device);
        println!("cuda available   {}", info.cuda_available);
        println!("cuda devices     {}", info.cuda_device_count);
        println!("cudnn available  {}", info.cudnn_available);
        if let Some(v) = info.cuda_runtime_version {
            println!("cuda runtime     {v}");
        }
        println!("torch (build)    {}", info.torch_version);
        println!("tch              {}", info.tch_version);
        println!("torch threads    {}", info.torch_threads);
    }
    Ok(())
}
